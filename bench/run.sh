#!/usr/bin/env bash
# Build relaylock and bench/relaybench, then run the bench on loopback:
# relaylock at its defaults (JSON on stdout, then --evidence, each -repeat
# times, median reported) against nmap's smtp-open-relay once, when nmap
# is installed (Debian: apt-get install nmap; this script installs
# nothing), then 50,000 address targets where nothing listens, for memory
# at scale. Prints the ratio, peak RSS, open found, false positives, round
# trips and connections per host. Extra arguments go to relaybench, e.g.
#   bench/run.sh -n 1000 -delay 50ms
#   bench/run.sh -n 50 -tarpit 5s -addresses 0
#   bench/run.sh -n 1000 -delay 0 -server-delay 50ms   # a slow server, not a slow link
#   bench/run.sh -concurrency 32                       # a tuned run instead of the defaults
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
go build -o "$out/relaylock" ./cmd/relaylock
go build -o "$out/relaybench" ./bench/relaybench
if ! command -v nmap >/dev/null; then
	echo "bench/run.sh: nmap not found (Debian: apt-get install nmap); measuring relaylock only" >&2
fi
"$out/relaybench" -relaylock "$out/relaylock" "$@"
