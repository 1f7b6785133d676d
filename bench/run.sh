#!/usr/bin/env bash
# Build relaylock and bench/relaybench, then run the bench on loopback:
# relaylock against nmap's smtp-open-relay (when nmap is installed; this
# script installs nothing). Extra arguments go to relaybench, e.g.
#   bench/run.sh -n 1000 -delay 50ms
#   bench/run.sh -n 50 -tarpit 5s
#   bench/run.sh -n 1000 -delay 0 -server-delay 50ms   # a slow server, not a slow link
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
