#!/usr/bin/env bash
# Entrypoint of the device containers (deploy/compose). It writes the
# owner's config from the environment (unless one is mounted at its path),
# enrolls the device on its first start with the token in
# PORTHOLE_ENROLL_TOKEN, and then runs the agent. The device dials out to
# the server; nothing listens for the outside.
#
# Environment:
#   PORTHOLE_SERVER        the server's URL, such as https://portholed:8443
#   PORTHOLE_DEVICE_NAME   this device's name: a-z, 0-9 and -, up to 63
#   PORTHOLE_ENROLL_TOKEN  an enrollment token (first start only), from
#                          porthole enroll-token create
#   PORTHOLE_FINGERPRINT   the server certificate's sha256:... fingerprint,
#                          for a self-signed server (read by enroll itself)
#   PORTHOLE_CONSENT       manual (default), approve or auto
#   PORTHOLE_ALLOW_PORTS   local ports engineers may forward to, as 22,80
#                          (default none)
#   PORTHOLE_RUN_AS        the user engineers' shells run as (default root)
#   PORTHOLE_STATE         the state dir, a volume (default /var/lib/porthole-agent)
#   PORTHOLE_AGENT_CONFIG  the owner's config (default /etc/porthole/agent.yaml)
#   PORTHOLE_SOCKET        the owner's socket (default /run/porthole/agent.sock)
set -euo pipefail

state=${PORTHOLE_STATE:-/var/lib/porthole-agent}
config=${PORTHOLE_AGENT_CONFIG:-/etc/porthole/agent.yaml}
name=${PORTHOLE_DEVICE_NAME:-${HOSTNAME:-}}
consent=${PORTHOLE_CONSENT:-manual}
allow_ports=${PORTHOLE_ALLOW_PORTS:-}
run_as=${PORTHOLE_RUN_AS:-}
socket=${PORTHOLE_SOCKET:-}

say() { echo "device-entrypoint: $*" >&2; }

if [ ! -e "$config" ]; then
  case $consent in
  manual | approve | auto) ;;
  *)
    say "PORTHOLE_CONSENT=$consent: it must be manual, approve or auto"
    exit 1
    ;;
  esac
  if [[ ! $allow_ports =~ ^([0-9]+(,[0-9]+)*)?$ ]]; then
    say "PORTHOLE_ALLOW_PORTS=$allow_ports: give port numbers separated by commas, like 22,80"
    exit 1
  fi
  if [[ -n $run_as && ! $run_as =~ ^[A-Za-z_][A-Za-z0-9_.-]*$ ]]; then
    say "PORTHOLE_RUN_AS=$run_as is not a user name"
    exit 1
  fi
  mkdir -p "$(dirname "$config")"
  {
    echo "# The device owner's porthole-agent config, written by device-entrypoint.sh"
    echo "# from the container's environment. Mount your own here to replace it."
    echo "consent: $consent"
    echo "allow_ports: [${allow_ports//,/, }]"
    if [ -n "$run_as" ]; then echo "run_as: $run_as"; fi
    if [ -n "$socket" ]; then echo "socket: $socket"; fi
  } >"$config.tmp"
  chmod 0644 "$config.tmp"
  mv "$config.tmp" "$config"
  say "wrote $config (consent: $consent)"
fi

# enrollment.json is the last file enroll writes: its presence means enrolled.
if [ ! -e "$state/enrollment.json" ]; then
  if [ -z "${PORTHOLE_ENROLL_TOKEN:-}" ]; then
    say "${name:-this device} is not enrolled yet and PORTHOLE_ENROLL_TOKEN is empty, so it stops here."
    say "Make a token with: porthole enroll-token create --fleet FLEET --uses 3"
    say "then start the devices with it: PORTHOLE_ENROLL_TOKEN=phe_... PORTHOLE_FINGERPRINT=sha256:... docker compose up -d"
    exit 0
  fi
  if [ -z "${PORTHOLE_SERVER:-}" ] || [ -z "$name" ]; then
    say "enrolling needs PORTHOLE_SERVER (the server's URL) and PORTHOLE_DEVICE_NAME"
    exit 1
  fi
  say "enrolling $name with $PORTHOLE_SERVER"
  porthole-agent enroll --server "$PORTHOLE_SERVER" --token "$PORTHOLE_ENROLL_TOKEN" --name "$name" --state "$state"
fi
exec porthole-agent run --state "$state" --config "$config"
