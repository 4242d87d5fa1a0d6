#!/usr/bin/env bash
# Builds hosting/sample:v1 and :v2 on the local base image. Cached by Docker's layer cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${BASE_IMAGE:-hosting/base:bookworm}
for v in 1 2; do
  if ! docker image inspect "hosting/sample:v$v" >/dev/null 2>&1; then
    docker build -q --build-arg BASE_IMAGE="$base" --build-arg VERSION="$v" \
      -t "hosting/sample:v$v" "$here" >/dev/null
  fi
  echo "sample image: hosting/sample:v$v"
done
