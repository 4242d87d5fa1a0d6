#!/usr/bin/env bash
# Builds the local base image (Debian bookworm minbase) that every hosting Dockerfile can take as
# BASE_IMAGE when Docker Hub is out of reach. Cached: does nothing when the image exists.
set -euo pipefail

image=${1:-hosting/base:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image: $image present"
  exit 0
fi

# Use the mirror apt already uses on this machine.
mirror=$(grep -hoE '^(URIs:|deb) *https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | grep -v security | head -1 | sed -E 's/^(URIs:|deb) *//' || true)
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d /tmp/hosting-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/hosting-debootstrap.log 2>&1 || {
  tail -20 /tmp/hosting-debootstrap.log >&2; exit 1; }
# Keep the image small and apt usable inside docker build.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "base image: $image built"
