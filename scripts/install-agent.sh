#!/bin/sh
# Installs the Porthole agent on a device from a release (`make release`):
# fetches the release's SHA256SUMS and, for this device's architecture, its
# .deb (where dpkg is), .rpm (where rpm is) or bare binary, checks the
# download's SHA-256 against SHA256SUMS and refuses on a mismatch, then
# installs it. It enrolls nothing and starts nothing.
#
# Usage: install-agent.sh [options] BASE_URL
#   BASE_URL              where the release's files are, such as
#                         https://downloads.example.com/porthole/1.2.0
#   --method METHOD       auto (default: deb with dpkg, else rpm with rpm,
#                         else binary), deb, rpm or binary
#   --prefix DIR          the binary method installs DIR/bin/porthole-agent
#                         (default /usr/local, where deploy/systemd's unit
#                         runs it from)
#   --sums-sha256 HASH    also require SHA256SUMS itself to have this SHA-256
#                         (from a channel you trust more than BASE_URL)
#   --download-only DIR   fetch and check into DIR, install nothing
#   --arch ARCH           amd64, arm64 or armv7 (default: from uname -m)
#
# For instance:
#   curl -fsSL https://downloads.example.com/porthole/1.2.0/install-agent.sh |
#     sudo sh -s -- https://downloads.example.com/porthole/1.2.0
# then, once: porthole-agent enroll --server URL --token TOKEN --name NAME
# and when you choose: systemctl enable --now porthole-agent
set -eu

say() { printf 'install-agent: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}
usage() {
	if [ -f "$0" ]; then
		sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	else # piped into sh
		say "usage: install-agent.sh [--method auto|deb|rpm|binary] [--prefix DIR] [--sums-sha256 HASH] [--download-only DIR] [--arch ARCH] BASE_URL"
	fi
	exit 2
}

method=auto prefix=/usr/local sums_sha256='' download_only='' arch='' base=''
while [ $# -gt 0 ]; do
	case "$1" in
	--method) method=${2:?--method needs auto, deb, rpm or binary}; shift 2 ;;
	--prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
	--sums-sha256) sums_sha256=${2:?--sums-sha256 needs a hash}; shift 2 ;;
	--download-only) download_only=${2:?--download-only needs a directory}; shift 2 ;;
	--arch) arch=${2:?--arch needs amd64, arm64 or armv7}; shift 2 ;;
	-h | --help) usage ;;
	-*) die "unknown option $1 (see --help)" ;;
	*)
		[ -z "$base" ] || die "one BASE_URL only (see --help)"
		base=${1%/}
		shift
		;;
	esac
done
[ -n "$base" ] || usage

# Plain http lets anyone on the way swap SHA256SUMS and the package alike;
# only this machine's own loopback (a local mirror, a test) may use it.
case "$base" in
https://*) ;;
http://127.* | http://localhost | http://localhost[:/]* | http://\[::1\]*) ;;
http://*) die "$base is plain http: use https, so that SHA256SUMS cannot be swapped on the way" ;;
*) die "$base is not an https:// URL" ;;
esac

if [ -z "$arch" ]; then
	m=$(uname -m)
	case "$m" in
	x86_64 | amd64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	armv7* | armv8l) arch=armv7 ;; # armv8l: a 32-bit system on a 64-bit core
	*) die "this device is $m; the agent is built for x86_64 (amd64), aarch64 (arm64) and armv7" ;;
	esac
fi
case "$arch" in
amd64) deb=amd64 rpm=x86_64 ;;
arm64) deb=arm64 rpm=aarch64 ;;
armv7) deb=armhf rpm=armv7hl ;;
*) die "--arch $arch: choose amd64, arm64 or armv7" ;;
esac

if [ "$method" = auto ]; then
	if command -v dpkg >/dev/null 2>&1; then
		method=deb
	elif command -v rpm >/dev/null 2>&1; then
		method=rpm
	else
		method=binary
	fi
fi
case "$method" in
deb) pattern="porthole-agent_[^_/]*_$deb\\.deb" ;;
rpm) pattern="porthole-agent-[^/]*\\.$rpm\\.rpm" ;;
binary) pattern="porthole-agent-linux-$arch" ;;
*) die "--method $method: choose auto, deb, rpm or binary" ;;
esac

if [ -z "$download_only" ] && [ "$method" != binary ] && [ "$(id -u)" != 0 ]; then
	die "installing a package needs root: run it with sudo (or --download-only DIR)"
fi

if command -v curl >/dev/null 2>&1; then
	fetch() { curl -fsSL --proto '=https,http' -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
	fetch() { wget -q -O "$2" "$1"; }
else
	die "neither curl nor wget is installed: install one of them"
fi
if command -v sha256sum >/dev/null 2>&1; then
	sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
	sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
	die "no sha256sum (coreutils or busybox) to check the download with"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/porthole-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS" || die "could not fetch $base/SHA256SUMS"
if [ -n "$sums_sha256" ]; then
	got=$(sha256 "$tmp/SHA256SUMS")
	[ "$got" = "$sums_sha256" ] || die "refusing: SHA256SUMS has SHA-256 $got, not the $sums_sha256 you gave; nothing was installed"
fi

# SHA256SUMS lists each file as "HASH  NAME" (sha256sum's format, "*NAME"
# in binary mode): it is also the index of what the release holds.
matches=$(sed -n "s/^\\([0-9a-f]\\{64\\}\\) [ *]\\($pattern\\)\$/\\1 \\2/p" "$tmp/SHA256SUMS")
n=$(printf '%s' "$matches" | grep -c . || true)
[ "$n" -eq 1 ] || die "SHA256SUMS at $base lists $n files for $method on $arch (want one): is this a Porthole release?"
want=${matches%% *}
file=${matches#* }

say "fetching $file"
fetch "$base/$file" "$tmp/$file" || die "could not fetch $base/$file"
got=$(sha256 "$tmp/$file")
if [ "$got" != "$want" ]; then
	die "refusing $file: its SHA-256 is $got, but SHA256SUMS says $want; the download is damaged or was tampered with, and nothing was installed"
fi
say "$file matches SHA256SUMS"

if [ -n "$download_only" ]; then
	mkdir -p "$download_only"
	cp "$tmp/$file" "$download_only/$file"
	say "checked $download_only/$file; nothing installed (--download-only)"
	exit 0
fi

case "$method" in
deb) dpkg -i "$tmp/$file" ;;
rpm) rpm -U --replacepkgs "$tmp/$file" ;;
binary)
	mkdir -p "$prefix/bin"
	# Into place by rename, so a running agent keeps its old file intact.
	cp "$tmp/$file" "$prefix/bin/.porthole-agent.new"
	chmod 0755 "$prefix/bin/.porthole-agent.new"
	mv -f "$prefix/bin/.porthole-agent.new" "$prefix/bin/porthole-agent"
	say "installed $prefix/bin/porthole-agent; for the service see deploy/systemd/README.md"
	;;
esac
say "installed; enroll this device once: porthole-agent enroll --server URL --token TOKEN --name NAME"
