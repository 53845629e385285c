#!/usr/bin/env bash
# Builds a release of Porthole into one directory, ready to publish as is:
#
#   porthole-agent, portholed, porthole   PROGRAM-linux-{amd64,arm64,armv7}
#   porthole (the engineer's command)     porthole-darwin-{amd64,arm64},
#                                         porthole-windows-{amd64,arm64}.exe
#   the .deb and .rpm packages            scripts/packages.sh
#   install-agent.sh                      the devices' installer, which checks
#                                         what it fetches against SHA256SUMS
#   FILE.cdx.json                         a CycloneDX SBOM of each binary
#   SHA256SUMS                            every file above (sha256sum -c)
#
# All binaries are static (CGO_ENABLED=0), built with -trimpath and stamped
# with the version and commit (`version` prints them). Each SBOM is made by
# cyclonedx-gomod (pinned in tools/go.mod) from the module list Go embeds in
# that very binary, so it lists exactly what was linked into that file for
# its platform, the Go release included; packaging/sbomreplace then names
# the modules go.mod replaces by a patched copy (third_party/) as the
# upstream module and version they are, with that pedigree.
#
# A target that does not compile fails the release, naming it, and no
# SHA256SUMS is written: a release missing a platform must not look whole.
#
# Usage: scripts/release.sh [--out DIR]   (default dist/release/VERSION)
# PORTHOLE_VERSION sets the version; scripts/version.sh says the default.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'release: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

out=
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

# shellcheck source=scripts/version.sh
. scripts/version.sh
GO=${GO:-go}
out=${out:-dist/release/$VERSION}
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
	die "$out is not empty: remove it, or choose another --out (a release is built whole or not at all)"
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
tools=$(mktemp -d "${TMPDIR:-/tmp}/porthole-release.XXXXXX")
trap 'rm -rf "$tools"' EXIT

# The Linux binaries and the packages, which scripts/packages.sh builds
# into $out under their release names.
say "packages and Linux binaries ($VERSION)"
PORTHOLE_VERSION=$VERSION scripts/packages.sh --out "$out" --bin "$out"
$GO build -modfile=tools/go.mod -o "$tools/" github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod
$GO build -o "$tools/" ./packaging/sbomreplace

# build GOOS GOARCH PROGRAM: out/PROGRAM-GOOS-ARCH[.exe], its SBOM beside it.
failed=()
build() {
	local goos=$1 goarch=$2 prog=$3 goarm='' arch=$2 ext=''
	if [ "$goarch" = armv7 ]; then goarch=arm goarm=7; fi
	[ "$goos" = windows ] && ext=.exe
	local file=$prog-$goos-$arch$ext
	if [ ! -f "$out/$file" ]; then
		say "building $file"
		if ! CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOARM=$goarm \
			$GO build -trimpath -ldflags "$LDFLAGS" -o "$out/$file" "./cmd/$prog" 2>"$tools/err"; then
			say "$prog does not compile for $goos/$arch:"
			head -20 "$tools/err" >&2
			failed+=("$prog for $goos/$arch")
			return
		fi
	fi
	GOOS=$goos GOARCH=$goarch "$tools/cyclonedx-gomod" bin -json -std -noserial -notimestamp \
		-version "$VERSION" -output "$out/$file.cdx.json" "$out/$file"
	"$tools/sbomreplace" -bin "$out/$file" "$out/$file.cdx.json"
}
for arch in amd64 arm64 armv7; do
	for prog in porthole-agent portholed porthole; do
		build linux "$arch" "$prog"
	done
done
for target in darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
	build "${target%/*}" "${target#*/}" porthole
done

cp scripts/install-agent.sh "$out/"
chmod 0755 "$out/install-agent.sh"

if [ ${#failed[@]} -gt 0 ]; then
	die "not released, no SHA256SUMS written: $(printf '%s; ' "${failed[@]}")the rest is in $out"
fi
(cd "$out" && find . -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort | xargs sha256sum >"$tools/SHA256SUMS")
mv "$tools/SHA256SUMS" "$out/SHA256SUMS"
say "released $VERSION ($COMMIT): $(grep -c . "$out/SHA256SUMS") files in $out, checked by its SHA256SUMS"
