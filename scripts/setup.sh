#!/usr/bin/env bash
# Makes this machine ready for `make demo` and `make test`: checks Go, and
# makes sure PostgreSQL answers on 127.0.0.1:5432 (starting the local cluster
# if it is installed but stopped). Safe to run again.
set -euo pipefail

say() { printf 'setup: %s\n' "$*" >&2; }

command -v go >/dev/null || { say "Go is not installed (https://go.dev/doc/install)"; exit 1; }

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  if ! pg_up; then
    if [ "${CI:-}" = true ] || [ "${PORTHOLE_REQUIRE_PG:-}" = 1 ]; then
      say "PostgreSQL is not reachable on 127.0.0.1:5432 and CI requires it"; exit 1
    fi
    say "PostgreSQL is not reachable on 127.0.0.1:5432: its tests will be skipped"
  fi
fi
