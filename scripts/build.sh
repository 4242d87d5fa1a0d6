#!/usr/bin/env bash
# Configures and builds everything into build/ (override with BUILD_DIR). Incremental.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
# CMAKE_ARGS: more -D options for the first configure (e.g. -DHOSTING_TSAN=ON).
if [ ! -f "$build/build.ninja" ]; then
  # shellcheck disable=SC2086
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} \
    ${CMAKE_ARGS:-} >/dev/null
fi
# Two cores and 24 GB: two compile jobs keep memory well below the limit. TARGETS: only these.
# shellcheck disable=SC2086
cmake --build "$build" -j "${JOBS:-$(nproc)}" ${TARGETS:+--target $TARGETS}
