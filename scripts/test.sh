#!/usr/bin/env bash
# Every test, from a fresh machine: installs what is missing, builds, starts dockerd and a
# one-node Swarm, builds the images, then runs the unit tests and the integration tests against
# the real engine. A missing dockerd or Swarm is a failure, never a skip.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=retry.sh
source "$root/scripts/retry.sh"
# Each step prints how long the one before it took, and the end prints them all: the place to
# look when the test command grows.
timings=()
step_name="" step_start=$SECONDS
end_step() {
  [ -n "$step_name" ] && timings+=("$(printf '%5ds  %s' $((SECONDS - step_start)) "$step_name")")
  step_name="" step_start=$SECONDS
}
step() { end_step; step_name="$*"; printf '\n==> %s\n' "$*"; }
report() {
  local rc=$?
  end_step
  printf '\n==> Step times (exit %d, %d s in all)\n' "$rc" "$SECONDS"
  printf '%s\n' "${timings[@]}"
}
trap report EXIT

# Room to build four trees and the images and to run node dockerds and PostgreSQL pairs. The
# tests remove their temporary directories when they pass; what a failed run kept (named
# /tmp/hosting-*) goes here once it is half a day old.
step "Checking disk space"
find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'hosting-*' -mmin +720 -exec rm -rf {} + 2>/dev/null || true
need_gb=${HOSTING_TEST_MIN_FREE_GB:-12}
free_gb=$(( $(df -Pk "$root" | awk 'NR==2 {print $4}') / 1024 / 1024 ))
if [ "$free_gb" -lt "$need_gb" ]; then
  echo "test.sh: $free_gb GB free on $(df -P "$root" | awk 'NR==2 {print $6}'), the tests need $need_gb GB; the largest users:" >&2
  du -xsh /tmp/* /var/lib/docker /root/.cache 2>/dev/null | sort -h | tail -8 >&2
  exit 1
fi
echo "$free_gb GB free"
step "Installing dependencies";          "$root/scripts/install-deps.sh"
step "Building";                         "$root/scripts/build.sh"
step "Starting dockerd and the Swarm";   "$root/scripts/start-docker.sh"
step "Building images";                  "$root/scripts/images.sh"
step "Installing the npm packages (reflection client, config checks)"
for pkg in tests/reflection tests/config; do
  retry 3 300 "npm ci $pkg (the npm registry)" -- \
    npm ci --prefix "$root/$pkg" --no-audit --no-fund --loglevel=error \
    --fetch-timeout=60000 --fetch-retries=2
done

step "Building the web console (console/dist)"
retry 3 300 "the console's npm packages (the npm registry)" -- "$root/scripts/build-console.sh"

cd "$root/build"
step "Unit tests"
ctest -L unit --output-on-failure
step "Integration tests (real dockerd + Swarm)"
ctest -L integration --output-on-failure

# The same code under ThreadSanitizer: the unit tests, and the store and HA tests with their
# hostd processes instrumented. A report fails the test (halt_on_error).
step "ThreadSanitizer build (build-tsan/)"
"$root/scripts/absl-source.sh" "$root/build-tsan-absl"
# Every unit test binary (the tests labelled "script" run a script, not a binary of their own).
tsan_targets="$(ctest -L unit -LE script -N | sed -n 's/^ *Test *#[0-9]*: //p' | tr '\n' ' ')"
BUILD_DIR="$root/build-tsan" \
  CMAKE_ARGS="-DHOSTING_TSAN=ON -DHOSTING_TSAN_ABSL_SRC=$root/build-tsan-absl" \
  TARGETS="$tsan_targets postgres_store_test ha_integration_test" "$root/scripts/build.sh"
# ignore_noninstrumented_modules: accesses from gRPC's and protobuf's own (uninstrumented) code
# are not reported; the project's code is, in full.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1 suppressions=$root/scripts/tsan.supp"
cd "$root/build-tsan"
step "Unit tests under ThreadSanitizer"
ctest -L unit -LE script --output-on-failure
step "Store and HA tests under ThreadSanitizer"
ctest -R '^(postgres_store_test|ha_integration_test)$' --output-on-failure

# The unit tests again with clang under AddressSanitizer + UndefinedBehaviorSanitizer (any
# report fails the test), and every fuzz target (tests/fuzz) run for a short bounded time from
# its seed corpus. scripts/fuzz.sh [SECONDS] runs them longer.
step "AddressSanitizer + UBSan build (build-asan/)"
asan_targets="$(cd "$root/build" && ctest -L unit -LE script -N | sed -n 's/^ *Test *#[0-9]*: //p' | tr '\n' ' ')"
CC=clang CXX=clang++ BUILD_DIR="$root/build-asan" \
  CMAKE_ARGS="-DHOSTING_ASAN=ON -DHOSTING_FUZZ=ON" TARGETS="$asan_targets" "$root/scripts/build.sh"
step "Unit tests under AddressSanitizer + UBSan"
cd "$root/build-asan"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  ctest -L unit -LE script -j "$(nproc)" --output-on-failure
step "Fuzz targets, ${HOSTING_FUZZ_SECONDS:-20} s each"
"$root/scripts/fuzz.sh" "${HOSTING_FUZZ_SECONDS:-20}"
