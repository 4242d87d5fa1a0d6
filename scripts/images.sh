#!/usr/bin/env bash
# Builds the images the platform and its tests run: the Debian base (cached) and the sample
# workload. Needs a running dockerd.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=retry.sh
source "$root/scripts/retry.sh"
"$root/deploy/images/base/build.sh" hosting/base:bookworm
BASE_IMAGE=hosting/base:bookworm "$root/deploy/images/sample/build.sh"
# Docker's layer cache makes this quick when appsvc's sources have not changed.
retry 2 1500 "docker build of hosting/appsvc" -- docker build -q --build-arg BASE_IMAGE=hosting/base:bookworm \
  -f "$root/deploy/images/appsvc/Dockerfile" -t hosting/appsvc:dev "$root" >/dev/null
echo "appsvc image: hosting/appsvc:dev"
retry 2 1500 "docker build of hosting/hostagent" -- docker build -q --build-arg BASE_IMAGE=hosting/base:bookworm \
  -f "$root/deploy/images/hostagent/Dockerfile" -t hosting/hostagent:dev "$root" >/dev/null
echo "hostagent image: hosting/hostagent:dev"
retry 2 1500 "docker build of hosting/haproxy" -- docker build -q --build-arg BASE_IMAGE=hosting/base:bookworm \
  -f "$root/deploy/images/haproxy/Dockerfile" -t hosting/haproxy:dev "$root" >/dev/null
echo "haproxy image: hosting/haproxy:dev"
