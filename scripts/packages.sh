#!/usr/bin/env bash
# Builds Porthole's .deb and .rpm packages with nfpm (pinned in tools/go.mod,
# so the programs' own dependencies stay as they are):
#
#   porthole-agent  the device's agent       amd64, arm64, armhf (GOARM=7)
#   portholed       the server               amd64, arm64
#   porthole        the engineer's command   amd64, arm64
#
# each with its man pages and bash, zsh and fish completions (made from the
# programs' cobra commands by packaging/docgen), the daemons with their
# systemd unit (deploy/systemd, run from /usr/bin) and sysusers.d file.
#
# Usage: scripts/packages.sh [--out DIR] [--bin DIR] [PACKAGE[/ARCH[/FORMAT]]...]
#   --out DIR   where the packages go (default dist/packages)
#   --bin DIR   where the binaries are built, named PROGRAM-linux-ARCH as in
#               a release (default: a scratch directory)
#   PACKAGE/ARCH/FORMAT picks some, for instance porthole-agent/amd64/deb
#   (ARCH is amd64, arm64 or armv7; FORMAT deb or rpm); default: all.
# PORTHOLE_VERSION sets the version (scripts/version.sh says the default)
# and MAINTAINER the packages' maintainer.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'packages: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

out=dist/packages
bin=
picks=()
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--bin) bin=${2:?--bin needs a directory}; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) picks+=("$1"); shift ;;
	esac
done

# shellcheck source=scripts/version.sh
. scripts/version.sh
MAINTAINER=${MAINTAINER:-Porthole developers <packages@porthole.invalid>}
GO=${GO:-go}

# Every package this script can make, as PACKAGE/ARCH/FORMAT.
all=()
for arch in amd64 arm64 armv7; do
	for format in deb rpm; do
		all+=("porthole-agent/$arch/$format")
		[ "$arch" = armv7 ] || all+=("portholed/$arch/$format" "porthole/$arch/$format")
	done
done
want=()
if [ ${#picks[@]} -eq 0 ]; then
	want=("${all[@]}")
else
	for p in "${picks[@]}"; do
		n=0
		for a in "${all[@]}"; do
			case "$a/" in "$p"/*) want+=("$a"); n=$((n + 1)) ;; esac
		done
		[ $n -gt 0 ] || die "$p names no package; choose from: ${all[*]}"
	done
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/porthole-packages.XXXXXX")
trap 'rm -rf "$stage"' EXIT
bin=${bin:-$stage}
mkdir -p "$out" "$bin"
out=$(cd "$out" && pwd)
bin=$(cd "$bin" && pwd)

# build PROGRAM ARCH: a static Linux binary, $bin/PROGRAM-linux-ARCH.
# portholed embeds the web console, whose script is built first (make web:
# npm ci from web/package-lock.json, then tsc), so no server ships without
# it.
built=" "
console=
build() {
	local prog=$1 arch=$2 goarch=$2 goarm=''
	case " $built " in *" $prog-$arch "*) return ;; esac
	if [ "$prog" = portholed ] && [ -z "$console" ]; then
		say "building the web console"
		make --no-print-directory web >&2 || die "could not build the web console (make web)"
		console=built
	fi
	if [ "$arch" = armv7 ]; then goarch=arm goarm=7; fi
	say "building $prog for linux/$arch"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		$GO build -trimpath -ldflags "$LDFLAGS" -o "$bin/$prog-linux-$arch" "./cmd/$prog"
	built+="$prog-$arch "
}

# The units, from /usr/bin rather than /usr/local/bin where a hand
# install puts the programs (deploy/systemd/README.md).
for unit in porthole-agent portholed; do
	sed 's|^ExecStart=/usr/local/bin/|ExecStart=/usr/bin/|' "deploy/systemd/$unit.service" >"$stage/$unit.service"
	grep -q '^ExecStart=/usr/bin/' "$stage/$unit.service" || die "deploy/systemd/$unit.service: no ExecStart=/usr/local/bin/ to point at /usr/bin"
done

# Each package's share of deploy/systemd/porthole.conf: the agent's makes
# the owners' group, the server's its user. One file for both would be a
# file two packages own, which dpkg refuses.
sysusers() { # PACKAGE NAME: the line that makes NAME, with its comment
	{
		printf '# %s: made by the %s package from deploy/systemd/porthole.conf (sysusers.d(5)).\n' "$1.conf" "$1"
		awk -v name="$2" '
			/^#$/ { c = ""; next }
			/^#/ { c = c $0 "\n"; next }
			/^[gu] / { if ($2 == name) { printf "%s%s\n", c, $0; found = 1 } }
			{ c = "" }
			END { exit !found }' deploy/systemd/porthole.conf
	} >"$stage/$1.sysusers" || die "deploy/systemd/porthole.conf makes no $2"
}
sysusers porthole-agent porthole
sysusers portholed portholed

say "writing man pages and completions"
$GO run ./packaging/docgen -out "$stage/docs" -version "$VERSION"

for w in "${want[@]}"; do
	IFS=/ read -r pkg arch format <<<"$w"
	build "$pkg" "$arch"
	nfpmarch=$arch
	[ "$arch" = armv7 ] && nfpmarch=arm7 # nfpm's name: armhf in a .deb, armv7hl in an .rpm
	say "packaging $pkg $VERSION for $arch as .$format"
	ARCH=$nfpmarch VERSION=$VERSION MAINTAINER=$MAINTAINER STAGE=$stage BINARY="$bin/$pkg-linux-$arch" \
		$GO tool -modfile=tools/go.mod nfpm package --config "packaging/nfpm/$pkg.yaml" --packager "$format" --target "$out/" >&2
done
say "done: ${#want[@]} packages in $out"
