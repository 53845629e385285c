#!/usr/bin/env bash
# The demo behind `make demo`: a throw-away Porthole server and two devices
# behind NAT, each in a network namespace of its own with no inbound path
# (scripts/netns.sh), then a support engineer's work on them through the
# relay. Without root (or without ip/nft) the devices run on loopback
# instead, and the demo says so. Everything it starts it stops, by PID, and
# the namespaces are deleted, also on Ctrl-C. Needs bin/ from `make build`.
# shellcheck disable=SC2086 # $eng and on_device[i] are command prefixes
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
PH=${PH:-ph$$} # names this run's namespaces and links
source scripts/netns.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/porthole-demo-XXXXXX")
pids=()
netns=false
enroll_token=unset PORTHOLE_FINGERPRINT=unset

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if $netns; then netns_down; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
say() { printf '    %s\n' "$*"; }
# Show commands as a person would type them: without bin/, the namespace
# wrapper or the long secrets.
run() {
  local shown="" arg
  for arg in "$@"; do
    case $arg in
      *[[:space:]\;\>\$]*) shown+="'$arg' " ;;
      *) shown+="$arg " ;;
    esac
  done
  shown=${shown% }
  shown=${shown//$BIN\//}
  shown=${shown//ip netns exec $PH-dev? /}
  shown=${shown//ip netns exec $PH-eng /}
  shown=${shown//$enroll_token/\$TOKEN}
  shown=${shown//$PORTHOLE_FINGERPRINT/\$PORTHOLE_FINGERPRINT}
  shown=${shown//$work\//}
  printf '$ %s\n' "$shown"
  "$@"
}

devices=(kitchen-amp field-cam-7)
# The owners' choices, in each device's own config: the amplifier in a
# customer's home lets support in only with a code its owner reads out;
# the operator's own field camera lets its fleet's engineers straight in.
consent=(manual auto)
on_device=() # the command prefix that runs something "on" each device
eng=""       # the command prefix that runs something on the engineer's laptop
host=127.0.0.1
port=0
if netns_supported; then
  netns=true
  host=$PH_SERVER_IP
  step "Putting ${devices[0]} and ${devices[1]} behind a NAT router, each in a network namespace of its own"
  netns_up 2
  on_device=("ip netns exec $PH-dev1" "ip netns exec $PH-dev2")
  eng="ip netns exec $PH-eng"
  port=443
  say "server $PH_SERVER_IP; ${devices[0]} $(device_ip 1), ${devices[1]} $(device_ip 2): private addresses behind the router"
  say "the engineer is behind a second router; both routers let out only TCP to port 443"
else
  on_device=("" "")
  step "Note: not root (or ip/nft missing), so the devices run on loopback, not behind NAT."
  say "Run as root (sudo make demo) to see them in network namespaces with no inbound path."
fi

step "Starting a throw-away Porthole server (portholed dev)"
# With namespaces the server takes 443 for everything and keeps the SSH
# relay of older agents on 2222, which the routers do not let out.
"$BIN/portholed" dev --host "$host" --listen "$host:$port" --relay-listen "$host:$((port ? 2222 : 0))" >"$work/dev.out" 2>"$work/dev.err" &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q '^PORTHOLE_ENROLL_TOKEN=' "$work/dev.out" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/dev.err" >&2; echo "demo: portholed dev exited" >&2; exit 1; }
  sleep 0.1
done
grep -q '^PORTHOLE_ENROLL_TOKEN=' "$work/dev.out" || { echo "demo: portholed dev did not start within 10 s" >&2; exit 1; }
get() { sed -n "s/^$1=//p" "$work/dev.out"; }
export PORTHOLE_SERVER PORTHOLE_TOKEN PORTHOLE_FINGERPRINT
PORTHOLE_SERVER=$(get PORTHOLE_SERVER)
PORTHOLE_TOKEN=$(get PORTHOLE_TOKEN)
PORTHOLE_FINGERPRINT=$(get PORTHOLE_FINGERPRINT)
enroll_token=$(get PORTHOLE_ENROLL_TOKEN)
# The CLI keeps its login and keys here, not in your home directory.
export XDG_CONFIG_HOME="$work/config"
say "server $PORTHOLE_SERVER (pid ${pids[0]}), certificate $PORTHOLE_FINGERPRINT"

for i in 0 1; do
  dev=${devices[$i]}
  step "Enrolling $dev: it makes its own key; the server signs its host certificate"
  # shellcheck disable=SC2086 # on_device is a command prefix
  run ${on_device[$i]} "$BIN/porthole-agent" enroll --server "$PORTHOLE_SERVER" --token "$enroll_token" \
    --fingerprint "$PORTHOLE_FINGERPRINT" --name "$dev" --state "$work/$dev"
  # Each agent answers its owner on a socket of its own (by default
  # /run/porthole/agent.sock: one agent per machine).
  printf 'consent: %s\nsocket: %s\n' "${consent[$i]}" "$work/$dev.sock" >"$work/$dev.yaml"
  chmod 600 "$work/$dev.yaml"
  # shellcheck disable=SC2086
  ${on_device[$i]} "$BIN/porthole-agent" run --state "$work/$dev" --config "$work/$dev.yaml" 2>"$work/$dev.log" &
  pids+=($!)
  say "porthole-agent run (consent: ${consent[$i]}) is idling on the control channel (pid $!)"
done

step "Enrolling kitchen-amp a second time is refused, and says why"
run "$BIN/porthole-agent" enroll --server "$PORTHOLE_SERVER" --token "$enroll_token" \
  --fingerprint "$PORTHOLE_FINGERPRINT" --name kitchen-amp --state "$work/kitchen-amp-again" || true

if $netns; then
  step "Nothing reaches the devices from outside: the router refuses new inbound connections"
  if timeout 3 bash -c "exec 3<>/dev/tcp/$(device_ip 2)/22" 2>/dev/null; then
    echo "demo: the host reached field-cam-7 directly; the NAT is not working" >&2; exit 1
  fi
  say "connecting to field-cam-7 ($(device_ip 2)) from the server's host: refused"

  step "Only HTTPS gets out of either network: the server's port 443 serves the API, MQTT and the relay"
  if ${on_device[1]} timeout 3 bash -c "exec 3<>/dev/tcp/$PH_SERVER_IP/2222" 2>/dev/null; then
    echo "demo: field-cam-7 reached the server's port 2222; the router should let out only 443" >&2; exit 1
  fi
  say "field-cam-7 to the server's SSH relay port 2222: blocked by its router; to 443: open"
fi

step "1. The support engineer's view: both devices online"
for _ in $(seq 1 100); do
  [ "$($eng "$BIN/porthole" devices --json | grep -o '"online":true' | wc -l)" = 2 ] && break
  sleep 0.1
done
run $eng "$BIN/porthole" devices

step "2. A command on field-cam-7, through the relay, end to end encrypted"
run $eng "$BIN/porthole" ssh field-cam-7 -- uname -a

step "3. A file to field-cam-7 and back with porthole scp"
head -c 1048576 /dev/urandom >"$work/firmware.bin"
run $eng "$BIN/porthole" scp "$work/firmware.bin" field-cam-7:/tmp/firmware.bin
run $eng "$BIN/porthole" scp field-cam-7:/tmp/firmware.bin "$work/firmware-back.bin"
sent=$(sha256sum <"$work/firmware.bin" | cut -d' ' -f1)
back=$(sha256sum <"$work/firmware-back.bin" | cut -d' ' -f1)
say "sent     sha256 $sent"
say "received sha256 $back"
[ "$sent" = "$back" ] || { echo "demo: the file came back different" >&2; exit 1; }

step "4. kitchen-amp is in manual consent: without its owner's code the engineer gets nothing"
# shellcheck disable=SC2086
run $eng "$BIN/porthole" ssh kitchen-amp -- hostname || true
say "(a valid login and certificate are not enough: the owner decides)"

step "   The owner asks for support on kitchen-amp and reads the code out to the engineer"
# shellcheck disable=SC2086
run ${on_device[0]} "$BIN/porthole-agent" request --config "$work/kitchen-amp.yaml" \
  --reason "the amplifier hums" --for 30m | tee "$work/request.out"
code=$(grep -oE '[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}' "$work/request.out" | head -1)
[ -n "$code" ] || { echo "demo: porthole-agent request printed no code" >&2; exit 1; }
run $eng "$BIN/porthole" requests
run $eng "$BIN/porthole" ssh kitchen-amp --code "$code" -- 'echo "gain reset" > /tmp/kitchen-amp-fix; cat /tmp/kitchen-amp-fix'

step "5. What the engineer did, as the owner sees it on kitchen-amp, and in the server's audit log"
# shellcheck disable=SC2086
run ${on_device[0]} "$BIN/porthole-agent" log --state "$work/kitchen-amp"
# shellcheck disable=SC2086
run ${on_device[0]} "$BIN/porthole-agent" sessions --state "$work/kitchen-amp"
last=$(${on_device[0]} "$BIN/porthole-agent" sessions --state "$work/kitchen-amp" --json | grep -oE 'ses_[a-z0-9]+' | head -1)
# shellcheck disable=SC2086
run ${on_device[0]} "$BIN/porthole-agent" replay --state "$work/kitchen-amp" --exec --speed 10 "$last"
run $eng "$BIN/porthole" sessions
run $eng "$BIN/porthole" audit --verify

step "6. The owner's kill switch ends a live session at once"
$eng "$BIN/porthole" ssh kitchen-amp --code "$code" -- 'echo "engineer: working..."; sleep 60' >"$work/live.out" 2>&1 &
live=$!
pids+=($live)
for _ in $(seq 1 100); do
  grep -q working "$work/live.out" 2>/dev/null && break
  sleep 0.1
done
say "an engineer is connected and working (pid $live)"
started=$(date +%s.%N)
# shellcheck disable=SC2086
run ${on_device[0]} "$BIN/porthole-agent" revoke --config "$work/kitchen-amp.yaml"
wait "$live" || true
ended=$(date +%s.%N)
sed 's/^/    engineer sees: /' "$work/live.out"
say "$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "the engineer was out %.1f s after revoke", b - a }')"
awk -v a="$started" -v b="$ended" 'BEGIN { exit !(b - a < 3) }' || { echo "demo: revoke took more than 3 s" >&2; exit 1; }

step "Done. Everything the demo started is stopped, its namespaces and files removed."
