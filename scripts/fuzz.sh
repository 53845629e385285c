#!/usr/bin/env bash
# Runs every Go fuzz target in the module (each `func FuzzXxx(f *testing.F)`
# in a _test.go file outside third_party/), one after another, for FUZZTIME
# each (default 10m). FUZZ, if set, is an extended regexp that picks targets
# by "package/FuzzName", such as FUZZ=control/ or FUZZ=FuzzVerify.
# A failing input is written to the package's testdata/fuzz/FuzzName/;
# keep it there (commit it) once the bug is fixed: plain `go test` then runs
# it as a seed. Every target runs; the exit status is 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10m}
FUZZ=${FUZZ:-}

targets=$(grep -rEo --include='*_test.go' --exclude-dir=third_party --exclude-dir=node_modules --exclude-dir=.tools \
	'^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	sed -E 's|^\./(([^:]*)/)?[^/:]*:func (Fuzz[A-Za-z0-9_]*).*|\2/\3|' | sort -u)
if [ -n "$FUZZ" ]; then
	targets=$(grep -E -- "$FUZZ" <<<"$targets" || true)
fi
if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets${FUZZ:+ match $FUZZ}" >&2
	exit 1
fi

n=$(wc -l <<<"$targets")
echo "fuzz: $n targets, $FUZZTIME each" >&2
failed=()
i=0
for t in $targets; do
	i=$((i + 1))
	pkg=${t%/*} name=${t##*/}
	echo "fuzz: [$i/$n] $name in ./$pkg" >&2
	if ! "$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "./$pkg"; then
		failed+=("$t")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: failed: ${failed[*]} (inputs in each package's testdata/fuzz/)" >&2
	exit 1
fi
echo "fuzz: all $n targets passed" >&2
