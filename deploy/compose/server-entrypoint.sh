#!/usr/bin/env bash
# Entrypoint of the portholed container (deploy/compose). On the first start,
# while the data volume is still empty, `portholed init` makes the keys, the
# certificate authorities, the config file, the database and the first
# administrator, whose password and TOTP secret it prints to this container's
# log, once. Then, and on every later start, `portholed serve` runs.
#
# Environment (all optional; compose.yaml sets what it needs):
#   PORTHOLE_HOST         the name devices and engineers reach the server by
#                         (default portholed, the compose service); it goes
#                         into the certificate and the config at init
#   PORTHOLE_ADMIN_EMAIL  the first administrator (default admin@example.com)
#   PORTHOLE_DATABASE     sqlite (default) or a postgres:// URL
#   PORTHOLE_DATA         the data dir, a volume (default /var/lib/portholed)
#   PORTHOLE_API_PORT, PORTHOLE_BROKER_PORT, PORTHOLE_RELAY_PORT
#                         8443, 8883 and 2222 unless given; the ports are
#                         published as they are, so both sides agree
set -euo pipefail

data=${PORTHOLE_DATA:-/var/lib/portholed}
host=${PORTHOLE_HOST:-portholed}
admin=${PORTHOLE_ADMIN_EMAIL:-admin@example.com}
database=${PORTHOLE_DATABASE:-sqlite}
api_port=${PORTHOLE_API_PORT:-8443}
broker_port=${PORTHOLE_BROKER_PORT:-8883}
relay_port=${PORTHOLE_RELAY_PORT:-2222}
config=$data/portholed.yaml

say() { echo "server-entrypoint: $*" >&2; }

if [ ! -e "$config" ]; then
  if [ -d "$data" ] && [ -n "$(ls -A "$data")" ]; then
    say "$data holds files but no portholed.yaml: it was not made by portholed init, or init was interrupted."
    say "To start afresh, remove the server's volume: docker compose down --volumes"
    exit 1
  fi
  say "first start: making a new Porthole server in $data for https://$host:$api_port"
  portholed init --data "$data" --admin-email "$admin" --database "$database" \
    --public-url "https://$host:$api_port" \
    --broker-listen ":$broker_port" --relay-listen ":$relay_port" \
    --tls-host localhost --tls-host 127.0.0.1
  say "the administrator's password and TOTP secret above are shown only this once"
fi
exec portholed serve --config "$config"
