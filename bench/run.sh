#!/usr/bin/env bash
# Porthole against plain OpenSSH on this machine, in one run; the results
# are printed as Markdown tables (see bench/README.md).
#
#   bench/run.sh [--worktree] [porthole-bench flags]
#   bench/run.sh -size 1G -devices 100000
#   bench/run.sh --worktree -only shell,echo
#   bench/run.sh -only load -load-sessions 50 -load-devices 10
#   bench/run.sh -only cluster -cluster-sessions 200   # two server nodes on PostgreSQL
#
# By default it measures the last commit, from a clean snapshot (git archive
# HEAD), so that unfinished work in the checkout can neither break nor
# colour the figures; --worktree measures the checkout as it is. Flags:
# `go run ./bench/cmd/porthole-bench -h`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
say() { printf 'bench: %s\n' "$*" >&2; }

worktree=
if [ "${1:-}" = --worktree ]; then worktree=1; shift; fi

# The baseline is an sshd of the run's own, so openssh-server must be
# installed (it is never started as a service).
if [ ! -x /usr/sbin/sshd ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing openssh-server for the OpenSSH baseline"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends openssh-server >/dev/null ||
      { apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null &&
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends openssh-server >/dev/null; }
  else
    say "/usr/sbin/sshd is missing: install openssh-server (sudo apt-get install openssh-server)"; exit 1
  fi
fi
command -v ssh >/dev/null && command -v scp >/dev/null ||
  { say "ssh and scp are needed (apt-get install openssh-client)"; exit 1; }

# Every simulated device holds a socket in portholed and in the benchmark.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d "${TMPDIR:-/tmp}/porthole-bench-src-XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -n "$worktree" ]; then
  src=$root
  rev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo worktree)
else
  src=$work/src
  mkdir -p "$src"
  git -C "$root" archive HEAD | tar -x -C "$src"
  rev=$(git -C "$root" rev-parse --short HEAD)
  if ! git -C "$root" diff --quiet HEAD -- 2>/dev/null; then
    say "measuring commit $rev; the checkout has changes that are not measured (--worktree measures them)"
  fi
fi
(cd "$src" && CGO_ENABLED=0 go build -o "$work/porthole-bench" ./bench/cmd/porthole-bench)
cd "$src"
"$work/porthole-bench" -revision "$rev" "$@"
