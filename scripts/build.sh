#!/usr/bin/env bash
# Configures and builds everything into build/ (override with BUILD_DIR). Incremental.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
# ccache, when installed (scripts/install-deps.sh installs it), keeps compiles across clones
# and build directories: paths are hashed relative to the checkout (CCACHE_BASEDIR), so a fresh
# clone at another path still hits. A cold cache just compiles. HOSTING_CCACHE=0 turns it off.
launcher=()
if [ "${HOSTING_CCACHE:-1}" != 0 ] && command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-8G}"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
# CMAKE_ARGS: more -D options for the first configure (e.g. -DHOSTING_TSAN=ON).
if [ ! -f "$build/build.ninja" ]; then
  # shellcheck disable=SC2086
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} \
    "${launcher[@]}" ${CMAKE_ARGS:-} >/dev/null
fi
# Two cores and 24 GB: two compile jobs keep memory well below the limit. TARGETS: only these.
# shellcheck disable=SC2086
cmake --build "$build" -j "${JOBS:-$(nproc)}" ${TARGETS:+--target $TARGETS}
