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
# The misconfiguration scanner of make check-release (deploy/opentofu,
# deploy/helm); its checks are built in, nothing is downloaded when it runs.
TRIVY_VERSION := v0.74.0
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
web: web/static/js/main.js web-vendor web/static/vendor/webterm.wasm
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@command -v npm >/dev/null || ./scripts/setup.sh
	cd web && npm ci --no-audit --no-fund --loglevel=error
web/static/js/main.js: web/node_modules/.package-lock.json $(WEB_SRC)
	rm -rf web/static/js
	cd web && npm run --silent build

# The browser terminal's files in web/static/vendor (not in git): xterm.js
# and its fit addon from the locked npm tree, and the WebAssembly SSH
# client (cmd/porthole-webterm) with the Go distribution's loader for it.
# The .wasm is built every time: Go's cache makes that quick, and knows
# its inputs better than make would; portholed sends its .gz (a quarter of
# its size) to browsers that take gzip.
WEB_VENDOR := web/static/vendor/xterm.mjs web/static/vendor/xterm.css web/static/vendor/addon-fit.mjs web/static/vendor/wasm_exec.js
.PHONY: web-vendor web/static/vendor/webterm.wasm
web-vendor: $(WEB_VENDOR)
web/static/vendor/xterm.mjs web/static/vendor/xterm.css web/static/vendor/addon-fit.mjs: web/node_modules/.package-lock.json
	mkdir -p web/static/vendor
	cp web/node_modules/@xterm/xterm/lib/xterm.mjs web/node_modules/@xterm/xterm/css/xterm.css web/node_modules/@xterm/addon-fit/lib/addon-fit.mjs web/static/vendor/
web/static/vendor/wasm_exec.js:
	mkdir -p web/static/vendor
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" $@
web/static/vendor/webterm.wasm:
	mkdir -p web/static/vendor
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags '-s -w' -o $@.tmp ./cmd/porthole-webterm
	cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
	[ -e $@.gz ] && [ ! $@.gz -ot $@ ] || gzip -9 -n -k -f $@

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

## check-release: a whole release built from scratch, then every artifact checked (formats, architectures, contents, SHA256SUMS, SBOMs) and the server package installed, upgraded and purged with dpkg; deploy/opentofu checked with Terraform too, it and deploy/helm scanned by trivy; minutes
check-release: setup .tools/trivy
	rm -rf dist/check-release
	GO=$(GO) ./scripts/release.sh --out dist/check-release
	PORTHOLE_RELEASE_DIR=$(CURDIR)/dist/check-release $(GO) test -count=1 -run 'TestRelease' -v ./packaging/
	PORTHOLE_CHECK_RELEASE=1 $(GO) test -count=1 -run 'TestTerraform|TestTrivy' -v ./deploy/opentofu/ ./deploy/helm/

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

# trivy needs Go's JSON v2 experiment; a build of several minutes, once.
.tools/trivy:
	GOEXPERIMENT=jsonv2 GOBIN=$(CURDIR)/.tools CGO_ENABLED=0 GOFLAGS=-buildvcs=false $(GO) install -trimpath \
		-ldflags '-X github.com/aquasecurity/trivy/pkg/version/app.ver=$(TRIVY_VERSION:v%=%)' github.com/aquasecurity/trivy/cmd/trivy@$(TRIVY_VERSION)

clean:
	rm -rf $(BIN) .tools .demo dist web/node_modules web/static/js web/static/vendor
