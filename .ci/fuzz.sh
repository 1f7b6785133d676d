#!/usr/bin/env bash
# Runs every fuzz target in the module for a short, fixed time
# (FUZZTIME, default 5s), after its committed seed corpus
# (testdata/fuzz/FuzzXxx). Targets are found automatically: every
# "func FuzzXxx(f *testing.F)" in a _test.go file. A crasher fails CI; go
# test writes it to testdata/fuzz/FuzzXxx/, and it is then committed with a
# named regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-5s}"
status=0
count=0
while IFS= read -r line; do
  file="${line%%:*}"
  name="$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]+)\(.*/\1/' <<<"$line")"
  pkg="./$(dirname "$file")"
  count=$((count + 1))
  echo "== fuzz $pkg $name ($FUZZTIME)"
  if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"; then
    echo "!! fuzz target $name in $pkg failed" >&2
    status=1
  fi
done < <(grep -rEn --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . | sed 's#^\./##' | sort)
if [ "$count" -eq 0 ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi
echo "== $count fuzz targets run"
exit "$status"
