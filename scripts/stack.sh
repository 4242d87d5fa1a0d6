#!/usr/bin/env bash
# The local stack (deploy/compose/compose.yaml): HAProxy -> nginx -> appsvc x3 -> PostgreSQL
# primary + replica and Redis, with Prometheus, Alertmanager and the exporters.
#
#   scripts/stack.sh up [--no-build]   images (scripts/images.sh), then every container up and
#                                      healthy; prints the addresses
#   scripts/stack.sh status            each container's state and health
#   scripts/stack.sh wait              waits until every container is healthy again
#   scripts/stack.sh down [--volumes]  stops and removes the containers (and the data)
#   scripts/stack.sh compose ARGS...   any other compose command on the stack (logs, ps, exec)
#
# Settings: deploy/compose/.env, created from .env.example on first use with random passwords.
# STACK_ENV_FILE=PATH uses another file (the tests do), STACK_PROJECT another project name,
# STACK_EXTRA_FILES more compose files from deploy/compose (e.g. compose.8-replicas.yaml).
# Uses `docker compose` (v2) when the docker CLI has it, docker-compose (1.29) otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/deploy/compose
env_file=${STACK_ENV_FILE:-$dir/.env}
project=${STACK_PROJECT:-hosting}
wait_s=${STACK_WAIT_S:-300}

log() { echo "stack: $*"; }
die() { echo "stack: $*" >&2; exit 1; }

compose() {
  local files=(-f "$dir/compose.yaml") extra
  for extra in ${STACK_EXTRA_FILES:-}; do files+=(-f "$dir/$extra"); done
  if docker compose version >/dev/null 2>&1; then
    docker compose -p "$project" --env-file "$env_file" "${files[@]}" "$@"
  elif command -v docker-compose >/dev/null; then
    docker-compose -p "$project" --env-file "$env_file" "${files[@]}" "$@"
  else
    die "neither 'docker compose' nor docker-compose is installed (scripts/install-deps.sh)"
  fi
}

ensure_env() {
  [ -f "$env_file" ] && return
  log "creating $env_file from .env.example (random passwords)"
  umask 077
  local line key value
  while IFS= read -r line; do
    if [[ $line =~ ^([A-Z_]+)=generate$ ]]; then
      key=${BASH_REMATCH[1]}
      value=$(openssl rand -hex 16)
      echo "$key=$value"
    else
      echo "$line"
    fi
  done < "$dir/.env.example" > "$env_file"
}

# Containers of the project, one per line: name state health.
states() {
  local ids
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}}' $ids \
    | sed 's|^/||' | sort
}

# Waits until every container runs (healthy when it has a check) or exited 0 (one-shot jobs).
wait_healthy() {
  local deadline=$((SECONDS + wait_s)) bad
  while :; do
    bad=$(states | awk '!(($2 == "running" && ($3 == "healthy" || $3 == "-")) || ($2 == "exited" && $4 == 0))')
    [ -z "$bad" ] && [ -n "$(states)" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "stack: not healthy after ${wait_s}s:" >&2
      echo "$bad" >&2
      local name
      for name in $(echo "$bad" | awk '{print $1}'); do
        echo "--- docker logs --tail 20 $name" >&2
        docker logs --tail 20 "$name" >&2 || true
      done
      return 1
    fi
    sleep 2
  done
}

# A setting from the env file.
setting() { sed -n "s/^$1=//p" "$env_file" | tail -1; }

cmd=${1:-}
shift || true
case "$cmd" in
  up)
    ensure_env
    if [ "${1:-}" != --no-build ]; then
      "$root/scripts/images.sh" appsvc haproxy postgres redis nginx prometheus alertmanager exporters
    fi
    log "starting (project $project)"
    compose up -d --remove-orphans
    wait_healthy
    bind=$(setting STACK_BIND)
    log "up and healthy:"
    log "  the application  http://${bind:-127.0.0.1}:$(setting HTTP_PORT)/api/users"
    log "  HAProxy stats    http://${bind:-127.0.0.1}:$(setting HAPROXY_STATS_PORT)/stats"
    log "  Prometheus       http://${bind:-127.0.0.1}:$(setting PROMETHEUS_PORT)"
    log "  Alertmanager     http://${bind:-127.0.0.1}:$(setting ALERTMANAGER_PORT)"
    ;;
  status)
    [ -f "$env_file" ] || die "no $env_file: the stack was never brought up"
    states | column -t
    ;;
  wait)
    wait_healthy
    ;;
  down)
    [ -f "$env_file" ] || die "no $env_file: the stack was never brought up"
    compose down --remove-orphans "$@"
    ;;
  compose)
    ensure_env
    compose "$@"
    ;;
  *)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 2
    ;;
esac
