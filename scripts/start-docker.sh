#!/usr/bin/env bash
# Starts dockerd (when none answers) and makes this node a one-node Swarm manager (when it is not
# one already). Idempotent; safe to run before every test run.
set -euo pipefail

log_dir=${HOSTING_STATE_DIR:-/var/lib/hosting}/log
# Every docker call is bounded: a dockerd that accepts the connection and never answers would
# otherwise hang this script (and CI) for good.
docker_bin=$(type -P docker || echo docker)
docker() { timeout --kill-after=5 30 "$docker_bin" "$@"; }
mkdir -p "$log_dir"

# A dockerd that is starting or shutting down: wait for it to answer or to be gone.
for _ in $(seq 1 60); do
  docker version >/dev/null 2>&1 && break
  pidof dockerd >/dev/null 2>&1 || break
  sleep 0.5
done

if ! docker version >/dev/null 2>&1; then
  if pidof dockerd >/dev/null 2>&1; then
    echo "start-docker: a dockerd process (pid $(pidof dockerd)) runs but does not answer" >&2
    exit 1
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "start-docker: dockerd is not installed; run scripts/install-deps.sh" >&2
    exit 1
  fi
  echo "start-docker: starting dockerd (log: $log_dir/dockerd.log)"
  # setsid: dockerd must outlive the shell that started it.
  setsid dockerd >>"$log_dir/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker version >/dev/null 2>&1; then
    echo "start-docker: dockerd did not answer within 30 s; last log lines:" >&2
    tail -20 "$log_dir/dockerd.log" >&2
    exit 1
  fi
fi

state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" != "active" ]; then
  echo "start-docker: initialising a one-node Swarm"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != "true" ]; then
  echo "start-docker: this node is in a Swarm but is not a manager; hostd needs a manager" >&2
  exit 1
fi
echo "start-docker: dockerd $(docker version --format '{{.Server.Version}}') up, Swarm manager $(docker info --format '{{.Swarm.NodeID}}')"
