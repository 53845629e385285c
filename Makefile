# Porthole. The two commands a newcomer needs:
#   make demo   - build, then tell the whole story on a dev server and two devices behind NAT
#   make test   - run every test (SQLite and PostgreSQL)
# and to ship it: make packages, make release, make check-release.

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X github.com/porthole/porthole/version.Version=$(VERSION) -X github.com/porthole/porthole/version.Commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2
FUZZTIME  ?= 10m

# The engineer's command also runs on macOS and Windows (cross-cli).
CLI_TARGETS := windows/amd64 windows/arm64 darwin/amd64 darwin/arm64
CLI_STATICCHECK := windows/amd64 darwin/arm64

.PHONY: all build cross cross-cli demo test fuzz bench lint setup tools clean packages release check-release web web-check

all: build

## build: the three binaries for this machine in bin/ (portholed with the web console), and the agent for arm64 and armv7
build: cross web
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/portholed ./cmd/porthole ./cmd/porthole-agent

## web: the web console's script (web/src, TypeScript) compiled into web/static/js, which portholed embeds; npm ci from web/package-lock.json first
WEB_SRC := $(wildcard web/src/*.ts) web/tsconfig.json
web: web/static/js/main.js
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@command -v npm >/dev/null || ./scripts/setup.sh
	cd web && npm ci --no-audit --no-fund --loglevel=error
web/static/js/main.js: web/node_modules/.package-lock.json $(WEB_SRC)
	rm -rf web/static/js
	cd web && npm run --silent build

## web-check: the console's TypeScript type-checks (strict), without writing anything
web-check: web/node_modules/.package-lock.json
	cd web && npm run --silent check

## cross: the agent must stay static and portable: linux/arm64 and linux/arm (GOARM=7)
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux-arm64/porthole-agent ./cmd/porthole-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux-armv7/porthole-agent ./cmd/porthole-agent

## demo: a dev server and two devices behind NAT (network namespaces as root), then ssh, scp, consent, logs, audit and revoke; stops everything it started
demo: setup build
	./scripts/demo.sh

## test: every test; PostgreSQL tests run against 127.0.0.1:5432 (scripts/setup.sh starts it if it can)
test: setup web
	$(GO) test -count=1 ./...

## packages: .deb and .rpm of the agent (amd64, arm64, armhf), the server and the CLI (amd64, arm64) in dist/packages/, with nfpm (tools/go.mod)
packages:
	GO=$(GO) ./scripts/packages.sh --out dist/packages

## release: every binary (Linux amd64/arm64/armv7; the CLI for macOS and Windows too), the packages, SBOMs, install-agent.sh and SHA256SUMS in dist/release/VERSION/
release:
	GO=$(GO) ./scripts/release.sh

## check-release: a whole release built from scratch, then every artifact checked (formats, architectures, contents, SHA256SUMS, SBOMs) and the server package installed, upgraded and purged with dpkg; minutes
check-release: setup
	rm -rf dist/check-release
	GO=$(GO) ./scripts/release.sh --out dist/check-release
	PORTHOLE_RELEASE_DIR=$(CURDIR)/dist/check-release $(GO) test -count=1 -run 'TestRelease' -v ./packaging/

## fuzz: every fuzz target for FUZZTIME each (default 10m), one after another; FUZZ=control/ picks some; failing inputs land in the package's testdata/fuzz/
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

## bench: Porthole against plain OpenSSH on this machine, ratios in Markdown (bench/README.md); BENCH_FLAGS=-h lists the options
bench:
	./bench/run.sh $(BENCH_FLAGS)

## lint: gofmt, go vet and staticcheck, here and (cross-cli) for the CLI on macOS and Windows
lint: tools web-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	.tools/staticcheck ./...
	$(MAKE) --no-print-directory cross-cli

## cross-cli: porthole builds for CLI_TARGETS and go vet (tests included) passes there for every package of ours it imports, one target at a time; staticcheck once per system (no file of ours is for one architecture)
cross-cli: tools
	@set -e; for t in $(CLI_TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; \
		pkgs=$$(GOOS=$$os GOARCH=$$arch $(GO) list -deps ./cmd/porthole | grep '^github.com/porthole/porthole/'); \
		echo "cross-cli $$os/$$arch: go build, go vet"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -o /dev/null ./cmd/porthole; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) vet $$pkgs; \
		case " $(CLI_STATICCHECK) " in *" $$t "*) \
			echo "cross-cli $$os/$$arch: staticcheck"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch .tools/staticcheck $$pkgs;; \
		esac; \
	done

## setup: what the tests and the demo need on this machine (idempotent)
setup:
	./scripts/setup.sh

tools: .tools/staticcheck
.tools/staticcheck:
	GOBIN=$(CURDIR)/.tools $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

clean:
	rm -rf $(BIN) .tools .demo dist web/node_modules web/static/js
