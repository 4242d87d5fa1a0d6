#!/usr/bin/env bash
# Configures and builds everything into build/ (override with BUILD_DIR). Incremental.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} >/dev/null
fi
# Two cores and 24 GB: two compile jobs keep memory well below the limit.
cmake --build "$build" -j "${JOBS:-$(nproc)}"
