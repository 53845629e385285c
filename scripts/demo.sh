#!/usr/bin/env bash
# The demo behind `make demo`: start a throw-away Porthole server, enroll two
# devices, and list them as a support engineer sees them. Everything it
# starts, it stops (also on Ctrl-C). Needs bin/ from `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-$PWD/bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/porthole-demo-XXXXXX")
server_pid=

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# Show commands as a person would type them: without bin/ and with the
# long secrets in variables.
run() {
  local shown="$*"
  shown=${shown//$BIN\//}
  shown=${shown//$enroll_token/\$TOKEN}
  shown=${shown//$PORTHOLE_FINGERPRINT/\$PORTHOLE_FINGERPRINT}
  printf '$ %s\n' "$shown"
  "$@"
}

step "Starting a throw-away Porthole server (portholed dev)"
"$BIN/portholed" dev --listen 127.0.0.1:0 >"$work/dev.out" 2>"$work/dev.err" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q '^PORTHOLE_ENROLL_TOKEN=' "$work/dev.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/dev.err" >&2; echo "demo: portholed dev exited" >&2; exit 1; }
  sleep 0.1
done
grep -q '^PORTHOLE_ENROLL_TOKEN=' "$work/dev.out" || { echo "demo: portholed dev did not start within 10 s" >&2; exit 1; }
get() { sed -n "s/^$1=//p" "$work/dev.out"; }
export PORTHOLE_SERVER PORTHOLE_TOKEN PORTHOLE_FINGERPRINT
PORTHOLE_SERVER=$(get PORTHOLE_SERVER)
PORTHOLE_TOKEN=$(get PORTHOLE_TOKEN)
PORTHOLE_FINGERPRINT=$(get PORTHOLE_FINGERPRINT)
enroll_token=$(get PORTHOLE_ENROLL_TOKEN)
echo "enrollment token for fleet dev: \$TOKEN=$enroll_token"
# The CLI keeps its login here, not in your home directory.
export XDG_CONFIG_HOME="$work/config"
echo "server $PORTHOLE_SERVER (pid $server_pid), certificate $PORTHOLE_FINGERPRINT"

for dev in kitchen-amp field-cam-7; do
  step "Enrolling device $dev: it makes its own key, the server signs its host certificate"
  run "$BIN/porthole-agent" enroll --server "$PORTHOLE_SERVER" --token "$enroll_token" \
    --fingerprint "$PORTHOLE_FINGERPRINT" --name "$dev" --state "$work/$dev"
done

step "Enrolling kitchen-amp a second time is refused, and says why"
run "$BIN/porthole-agent" enroll --server "$PORTHOLE_SERVER" --token "$enroll_token" \
  --fingerprint "$PORTHOLE_FINGERPRINT" --name kitchen-amp --state "$work/kitchen-amp-again" || true

step "The support engineer's view: porthole devices"
run "$BIN/porthole" devices

step "Done. Everything the demo started is stopped and its files removed."
