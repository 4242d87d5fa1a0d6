#!/usr/bin/env bash
# Builds the images the platform and its tests run: the Debian base (cached) and the sample
# workload. Needs a running dockerd.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/images/base/build.sh" hosting/base:bookworm
BASE_IMAGE=hosting/base:bookworm "$root/deploy/images/sample/build.sh"
