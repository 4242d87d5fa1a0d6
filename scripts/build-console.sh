#!/usr/bin/env bash
# Builds the web console into console/dist (what hostd --console-dir serves): the npm packages
# exactly as console/package-lock.json pins them, type-checked, bundled by Vite. The same lock
# file gives the same bundle. Needs node and npm (scripts/install-deps.sh).
#
#   scripts/build-console.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/console"
npm ci --no-audit --no-fund --loglevel=error --fetch-timeout=60000 --fetch-retries=2
npm run --silent build
echo "build-console: $(du -sh dist | cut -f1) in console/dist ($(find dist/assets -type f | wc -l) assets)"
