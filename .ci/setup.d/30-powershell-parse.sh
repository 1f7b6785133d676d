# shellcheck shell=bash
# tree-sitter PowerShell grammar for remediate's parse check
# (remediate/psparse_test.go runs remediate/testdata/psparse/parse.mjs over
# every embedded script). Sourced by .ci/run under set -euo pipefail: it
# must not exit, and it is idempotent. The grammar ships as WASM inside the
# npm package, so no compiler is needed (--ignore-scripts skips its
# node-gyp build). Versions are pinned together: tree-sitter-powershell
# 0.26.4's WASM loads in web-tree-sitter 0.26.3 (checked with parse.mjs).

relaylock_psparse_setup() {
  local dir=/opt/relaylock-psparse
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends nodejs npm
  fi
  mkdir -p "$dir"
  if [ ! -f "$dir/node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm" ] ||
     ! grep -q '"version": "0.26.3"' "$dir/node_modules/web-tree-sitter/package.json" 2>/dev/null; then
    npm install --prefix "$dir" --ignore-scripts --no-audit --no-fund \
      tree-sitter-powershell@0.26.4 web-tree-sitter@0.26.3
  fi
  export RELAYLOCK_PSPARSE="$dir"
}
relaylock_psparse_setup
