#!/usr/bin/env bash
# Builds the local base image (Debian bookworm minbase) that every hosting Dockerfile can take as
# BASE_IMAGE when Docker Hub is out of reach. Cached: does nothing when the image exists.
set -euo pipefail

image=${1:-hosting/base:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image: $image present"
  exit 0
fi

# shellcheck source=../../../scripts/retry.sh
source "$(dirname "$0")/../../../scripts/retry.sh"
# Use the mirror apt already uses on this machine.
mirror=$(debian_mirror)

root=$(mktemp -d /tmp/hosting-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base image: debootstrap bookworm from $mirror"
# debootstrap has no timeout of its own: a mirror that stops answering would hang it.
if ! retry 3 600 "debootstrap from $mirror" -- \
    sh -c "rm -rf '$root'/* && debootstrap --variant=minbase bookworm '$root' '$mirror' \
           >/tmp/hosting-debootstrap.log 2>&1"; then
  tail -20 /tmp/hosting-debootstrap.log >&2
  exit 1
fi
# apt-get inside every image build: a download that stops answering fails in 30 s, 3 tries.
printf 'Acquire::http::Timeout "30";\nAcquire::https::Timeout "30";\nAcquire::Retries "3";\n' \
  > "$root/etc/apt/apt.conf.d/80hosting-timeouts"
# Keep the image small and apt usable inside docker build.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "base image: $image built"
