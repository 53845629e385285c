#!/usr/bin/env bash
# Makes this machine ready for `make demo` and `make test`: checks Go,
# installs the Debian packages and test tools the tests run (versitygw, the
# S3 server, into .tools), and makes sure PostgreSQL answers on
# 127.0.0.1:5432 (starting the local cluster if it is installed but
# stopped). Safe to run again.
set -euo pipefail

say() { printf 'setup: %s\n' "$*" >&2; }

command -v go >/dev/null || { say "Go is not installed (https://go.dev/doc/install)"; exit 1; }

# Debian packages the demo and the tests use: `need COMMAND PACKAGE` adds
# PACKAGE when COMMAND is missing; they are installed together below (as
# root, with apt-get), else named so a person can install them.
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need nft nftables          # the demo's NAT between device namespaces and the server
need sshd openssh-server   # bench/: plain OpenSSH to compare with
need asciinema asciinema   # recordings must play in stock asciinema
need chromium chromium     # e2e: the owner's local page and the web console in headless Chromium
need firefox-esr firefox-esr # e2e: the web console in headless Firefox too (WebDriver BiDi, no patched build)
need node nodejs           # … driven by playwright-core; and the web console's build (TypeScript)
need npm npm
need tinyproxy tinyproxy   # e2e: an engineer whose only way out is an HTTP CONNECT proxy
need haproxy haproxy       # e2e: the load balancer in front of a cluster of server nodes
need rpm rpm               # packaging: rpm -qlp reads the .rpm packages' contents
need shellcheck shellcheck # packaging: the maintainer scripts and the device installer
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null && apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || say "could not install ${missing[*]}: the tests that need them will say so"
  else
    say "missing packages (install them for the full demo and tests): ${missing[*]}"
  fi
fi

# playwright-core (which drives Debian's chromium in the page tests) and
# axe-core come with the web console's locked npm tree: `make web` runs
# npm ci in web/ (make test and make build do).
tools="$(cd "$(dirname "$0")/.." && pwd)/.tools"

# The S3 server the object-storage tests run (recstore/s3store, e2e): the
# versitygw gateway over a directory, pinned, built into .tools from the Go
# module proxy (the first build takes a few minutes). Tests find it there;
# CI (CI=true or PORTHOLE_REQUIRE_S3=1) fails without it.
VERSITYGW_VERSION=v1.8.0
s3_required() { [ "${CI:-}" = true ] || [ "${PORTHOLE_REQUIRE_S3:-}" = 1 ]; }
if [ "$(cat "$tools/versitygw.version" 2>/dev/null)" != "$VERSITYGW_VERSION" ] || [ ! -x "$tools/versitygw" ]; then
  say "building versitygw $VERSITYGW_VERSION into $tools (the S3 server of the tests)"
  if GOBIN="$tools" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"; then
    echo "$VERSITYGW_VERSION" >"$tools/versitygw.version"
  elif s3_required; then
    say "could not build versitygw and CI requires it"; exit 1
  else
    say "could not build versitygw: the S3 tests will be skipped and say so"
  fi
fi

# The IaC checks' tools, pinned and built into .tools from the Go module
# proxy (each a few minutes, once): OpenTofu (deploy/opentofu: tofu fmt,
# validate and test), from its own module in tools/tofu (OpenTofu's
# go.mod replaces a module, so go install cannot build it), and Helm
# (deploy/helm: helm lint and template). Tests find them there; CI
# (CI=true) fails without them.
TOFU_VERSION=$(awk '$1 == "github.com/opentofu/opentofu" { print $2 }' "$tools/../tools/tofu/go.mod")
if [ "$(cat "$tools/tofu.version" 2>/dev/null)" != "$TOFU_VERSION" ] || [ ! -x "$tools/tofu" ]; then
  say "building OpenTofu $TOFU_VERSION into $tools (deploy/opentofu's checks)"
  if (cd "$tools/../tools/tofu" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
    -ldflags "-X github.com/opentofu/opentofu/version.dev=no" -o "$tools/tofu" github.com/opentofu/opentofu/cmd/tofu); then
    echo "$TOFU_VERSION" >"$tools/tofu.version"
  elif [ "${CI:-}" = true ]; then
    say "could not build OpenTofu and CI requires it"; exit 1
  else
    say "could not build OpenTofu: deploy/opentofu's tofu checks will be skipped and say so"
  fi
fi
HELM_VERSION=v4.3.2
if [ "$(cat "$tools/helm.version" 2>/dev/null)" != "$HELM_VERSION" ] || [ ! -x "$tools/helm" ]; then
  say "building Helm $HELM_VERSION into $tools (deploy/helm's checks)"
  if GOBIN="$tools" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install -trimpath \
    -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"; then
    echo "$HELM_VERSION" >"$tools/helm.version"
  elif [ "${CI:-}" = true ]; then
    say "could not build Helm and CI requires it"; exit 1
  else
    say "could not build Helm: deploy/helm's checks will be skipped and say so"
  fi
fi

# The OpenID provider of the SSO tests (api, cli: a real provider, never
# a mock): ory/hydra, pinned, built into .tools from its module source
# (its go.mod replaces hydra-client-go with a directory its module zip
# lacks, so go install cannot build it: the copy takes the published
# module instead). It needs cgo for its SQLite (DSN=memory). Tests find
# it there (PORTHOLE_HYDRA names another); CI (CI=true) fails without it.
HYDRA_VERSION=v2.3.0
if [ "$(cat "$tools/hydra.version" 2>/dev/null)" != "$HYDRA_VERSION" ] || [ ! -x "$tools/hydra" ]; then
  say "building ory/hydra $HYDRA_VERSION into $tools (the SSO tests' OpenID provider)"
  hydra_src=$(mktemp -d)
  if dir=$(go mod download -json "github.com/ory/hydra/v2@$HYDRA_VERSION" | awk -F'"' '$2 == "Dir" { print $4 }') &&
    cp -r "$dir/." "$hydra_src" && chmod -R u+w "$hydra_src" &&
    (cd "$hydra_src" && go mod edit -dropreplace github.com/ory/hydra-client-go/v2 &&
      CGO_ENABLED=1 GOFLAGS="-buildvcs=false -mod=mod" go build -trimpath -tags sqlite,sqlite_omit_load_extension -o "$tools/hydra" .); then
    echo "$HYDRA_VERSION" >"$tools/hydra.version"
  elif [ "${CI:-}" = true ]; then
    say "could not build ory/hydra and CI requires it"; exit 1
  else
    say "could not build ory/hydra: the SSO tests will be skipped and say so"
  fi
  rm -rf "$hydra_src"
fi

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
