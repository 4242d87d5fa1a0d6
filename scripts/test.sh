#!/usr/bin/env bash
# Every test, from a fresh machine: installs what is missing, builds, starts dockerd and a
# one-node Swarm, builds the images, then runs the unit tests and the integration tests against
# the real engine. A missing dockerd or Swarm is a failure, never a skip.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=retry.sh
source "$root/scripts/retry.sh"
step() { printf '\n==> %s\n' "$*"; }

step "Installing dependencies";          "$root/scripts/install-deps.sh"
step "Building";                         "$root/scripts/build.sh"
step "Starting dockerd and the Swarm";   "$root/scripts/start-docker.sh"
step "Building images";                  "$root/scripts/images.sh"
step "Installing the reflection client (npm)"
retry 3 300 "npm ci (the npm registry)" -- \
  npm ci --prefix "$root/tests/reflection" --no-audit --no-fund --loglevel=error \
  --fetch-timeout=60000 --fetch-retries=2

cd "$root/build"
step "Unit tests"
ctest -L unit --output-on-failure
step "Integration tests (real dockerd + Swarm)"
ctest -L integration --output-on-failure
