#!/usr/bin/env bash
# Builds the images the platform and its tests run: the Debian base (cached), the sample
# workload and hosting/NAME:dev for every deploy/images/NAME (or only the NAMEs given).
# Needs a running dockerd.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=retry.sh
source "$root/scripts/retry.sh"
"$root/deploy/images/base/build.sh" hosting/base:bookworm
BASE_IMAGE=hosting/base:bookworm "$root/deploy/images/sample/build.sh"
# Docker's layer cache makes these quick when their inputs have not changed.
# The images built from deploy/images/NAME/Dockerfile, tagged hosting/NAME:dev.
images=(appsvc hostagent haproxy postgres redis nginx prometheus alertmanager exporters logship node)
for name in "${@:-${images[@]}}"; do
  retry 2 1500 "docker build of hosting/$name" -- docker build -q \
    --build-arg BASE_IMAGE=hosting/base:bookworm \
    -f "$root/deploy/images/$name/Dockerfile" -t "hosting/$name:dev" "$root" >/dev/null
  echo "$name image: hosting/$name:dev"
done
