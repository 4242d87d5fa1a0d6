#!/usr/bin/env bash
# Fuzzes every parser of outside input (tests/fuzz): builds the libFuzzer targets with clang
# under AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ (BUILD_DIR), then runs
# each for SECONDS (default 60) from its seed corpus. New inputs that reach new code are kept
# in build-asan/fuzz/<target>/corpus for the next run; a crash stops the run with its input in
# build-asan/fuzz/<target>/ and the command that reproduces it.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 spec_fuzz
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
build=${BUILD_DIR:-$root/build-asan}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for dir in "$root"/tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi
CC=clang CXX=clang++ BUILD_DIR="$build" CMAKE_ARGS="-DHOSTING_ASAN=ON -DHOSTING_FUZZ=ON" \
  TARGETS="${targets[*]}" "$root/scripts/build.sh"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in "${targets[@]}"; do
  work=$build/fuzz/$t
  mkdir -p "$work/corpus"
  printf '==> %s for %s s\n' "$t" "$seconds"
  # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: one that needs 2 GB a leak of
  # memory; -max_len: well past every seed, well under every limit the parsers enforce.
  if ! "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" \
       "$work/corpus" "$root/tests/fuzz/corpus/$t" > "$work/log" 2>&1; then
    tail -n 60 "$work/log"
    printf '\n%s FAILED. Reproduce: %s %s/<crash-file>; once fixed, keep the input as\n' \
      "$t" "$build/tests/fuzz/$t" "$work"
    printf 'tests/fuzz/corpus/%s/crash-<what> (a regression test in every build).\n' "$t"
    failed+=("$t")
    continue
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$work/log" | tr '\n' ' '
  echo
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz targets that failed: ${failed[*]}" >&2
  exit 1
fi
echo "every fuzz target ran clean for $seconds s"
