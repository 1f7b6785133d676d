#!/usr/bin/env bash
# Runs govulncheck (installed from the Go module proxy). It needs the Go
# vulnerability database at https://vuln.go.dev (or a mirror named by
# GOVULNDB, e.g. GOVULNDB=file:///srv/vulndb). A machine that cannot reach
# the database cannot check anything: that is reported loudly but does not
# fail CI. Findings (exit code 3) and any other error do fail it.
set -uo pipefail
cd "$(dirname "$0")/.."
db=()
if [ -n "${GOVULNDB:-}" ]; then
  db=(-db "$GOVULNDB")
fi
out="$(mktemp)"
govulncheck "${db[@]}" ./... >"$out" 2>&1
rc=$?
cat "$out"
if [ "$rc" -eq 0 ]; then
  echo "govulncheck: no known vulnerability affects relaylock"
  exit 0
fi
if [ "$rc" -ne 3 ] && grep -qE 'fetching vulnerabilities|vuln\.go\.dev|no such host|dial tcp|connection refused|i/o timeout|TLS handshake' "$out" \
   && ! grep -qE '^(Vulnerability #|Symbol Results|Your code is affected)' "$out"; then
  echo "!! govulncheck NOT RUN: the vulnerability database (https://vuln.go.dev, or GOVULNDB) is unreachable from this machine." >&2
  echo "!! Run it where the database is reachable (or mirror it and set GOVULNDB=file:///path) before a release." >&2
  rm -f "$out"
  exit 0
fi
rm -f "$out"
echo "govulncheck failed (exit $rc): vulnerabilities found or the check broke" >&2
exit "$rc"
