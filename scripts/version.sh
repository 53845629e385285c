# shellcheck shell=bash disable=SC2034 # LDFLAGS and the others are for the script that sources this
# Sourced by scripts/packages.sh and scripts/release.sh: sets, for the
# checkout in the current directory,
#   VERSION            the version of the binaries and packages: $PORTHOLE_VERSION
#                      if set; else the tag vX.Y.Z on HEAD as X.Y.Z; else
#                      X.Y.Z+gitSTAMP.COMMIT after the last tag, or
#                      0.0.0~gitSTAMP.COMMIT without one (STAMP: the commit's
#                      UTC time, so that later commits sort later)
#   COMMIT             HEAD's hash, with -dirty if tracked files were changed
#   SOURCE_DATE_EPOCH  HEAD's commit time, unless set: every date and file
#                      time in the packages and man pages, so two builds of
#                      one commit agree byte for byte (an .rpm also names
#                      the host that built it)
# A '-' in a tag becomes '~' (1.2.0-rc1 -> 1.2.0~rc1): dpkg and rpm both
# sort that before 1.2.0, and neither takes '-' in a version.

COMMIT=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	COMMIT="$COMMIT-dirty"
fi
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
export SOURCE_DATE_EPOCH

if [ -n "${PORTHOLE_VERSION:-}" ]; then
	VERSION=$PORTHOLE_VERSION
else
	stamp=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD)
	short=$(git rev-parse --short=12 HEAD)
	if tag=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null); then
		VERSION=${tag#v}
	elif tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null); then
		VERSION="${tag#v}+git$stamp.$short"
	else
		VERSION="0.0.0~git$stamp.$short"
	fi
	VERSION=$(printf '%s' "$VERSION" | tr - '~')
fi
case "$VERSION" in
[0-9]*) ;;
*)
	echo "version $VERSION must start with a digit (dpkg and rpm need one)" >&2
	exit 1
	;;
esac
if printf '%s' "$VERSION" | grep -q '[^A-Za-z0-9.+~]'; then
	echo "version $VERSION may hold only letters, digits and . + ~ (dpkg and rpm take no - or _ there)" >&2
	exit 1
fi

# LDFLAGS stamps the version and commit into the binaries (`version`
# subcommands print them); -s -w drop the symbol tables, as make build does.
LDFLAGS="-s -w -X github.com/porthole/porthole/version.Version=$VERSION -X github.com/porthole/porthole/version.Commit=$COMMIT"
