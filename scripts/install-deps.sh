#!/usr/bin/env bash
# Installs every Debian package hosting needs to build, test and run. Idempotent: packages that
# are already installed are left alone, so a second run costs one dpkg query.
set -euo pipefail
# shellcheck source=retry.sh
source "$(dirname "$0")/retry.sh"

packages=(
  # build
  build-essential cmake ninja-build pkg-config git ccache shellcheck
  # the sanitizer build and the fuzz targets (clang, libFuzzer and the sanitizer runtimes)
  clang libclang-rt-14-dev
  # C++ libraries
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libabsl-dev
  libcurl4-openssl-dev libsqlite3-dev prometheus-cpp-dev nlohmann-json3-dev
  libyaml-cpp-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  # appsvc: HTTP (Boost.Beast), PostgreSQL (libpq), Redis (hiredis)
  libboost1.81-dev libpq-dev libhiredis-dev
  # runtime: Docker Swarm and the base image builder
  docker.io debootstrap iproute2 curl ca-certificates procps netcat-openbsd openssl
  # the local multi-node Swarm (scripts/cluster-up.sh): a containerd per node, nsenter, iptables
  containerd util-linux iptables
  # real dependencies for the tests and benchmarks (started by the scripts, never at install)
  postgresql-15 postgresql-client-15 redis-server nginx-light wrk haproxy prometheus
  # the platform stacks' checks and the local compose stack (deploy/compose)
  docker-compose yamllint prometheus-alertmanager systemd syslog-ng-core syslog-ng-mod-http python3
  # HTTPS at the front door (scripts/tls.sh): ACME client, runtime API; pebble for its tests
  dehydrated socat pebble
  # ansible/ and its test: machines booted by systemd-nspawn, reached over SSH, apt through an
  # apt-cacher-ng; ansible-lint, testinfra, the Docker modules' Python libraries
  ansible ansible-lint python3-testinfra python3-docker python3-jsondiff systemd-container
  apt-cacher-ng openssh-client
  # node for the reflection-based external gRPC client used in tests, and the web console's
  # build (scripts/build-console.sh); the browser its test drives (playwright-core, headless)
  nodejs chromium fonts-dejavu-core
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages must not start their services on install: the scripts start what they need, on
# their own ports and data directories.
policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ "$had_policy" = 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
retry 3 300 "apt-get update (the Debian mirror)" -- apt-get "${APT_OPTS[@]}" update -q
retry 3 1800 "apt-get install" -- \
  apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${missing[@]}"
