#!/usr/bin/env bash
# The production tiers on Docker Swarm (deploy/swarm/stack.yml): PostgreSQL primary + replica,
# Redis, HAProxy (for hostd), Prometheus, Alertmanager and the exporters.
#
#   scripts/swarm-stack.sh up [--no-build]   network, secrets, node labels, deploy, converge
#   scripts/swarm-stack.sh status            the stack's services and their replicas
#   scripts/swarm-stack.sh wait              waits until every service runs all its replicas
#   scripts/swarm-stack.sh down [--volumes]  removes the stack (secrets stay; --volumes: data)
#
# Run it on a manager. SWARM_STACK names the stack (default hosting); HTTP_PORT, HTTPS_PORT,
# PREVIEW_PORT, HAPROXY_STATS_PORT, PROMETHEUS_PORT, ALERTMANAGER_PORT, HTTPS_REDIRECT, TLS_DIR
# (HAProxy's certificates, default /var/lib/hosting/tls; scripts/tls.sh) and HAPROXY_RUN_DIR
# (where HAProxy's runtime API socket appears for hostd, default /run/hosting/haproxy) are read
# by the stack, SECRET_PREFIX the secrets' names (PREFIX_pg_superuser, _pg_app, _pg_replication,
# _redis, _tls; default hosting): the application's database password is PREFIX_pg_app's value.
# PREFIX_tls is HTTPS's default certificate: made from TLS_CERT_FILE (chain) and TLS_KEY_FILE
# when it does not exist yet, else self-signed for TLS_NAME (default: this host's name).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
stack=${SWARM_STACK:-hosting}
wait_s=${SWARM_STACK_WAIT_S:-300}
export HAPROXY_RUN_DIR=${HAPROXY_RUN_DIR:-/run/hosting/haproxy}
export SECRET_PREFIX=${SECRET_PREFIX:-hosting}

log() { echo "swarm-stack: $*"; }
die() { echo "swarm-stack: $*" >&2; exit 1; }

[ "$(docker info -f '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] ||
  die "this engine is not a Swarm manager (scripts/start-docker.sh makes one)"

services() {
  docker service ls --filter "label=com.docker.stack.namespace=$stack" \
    --format '{{.Name}} {{.Replicas}}' | sort
}

# A secret that does not exist is created with a random value, which is also kept in
# $secrets_dir/NAME (mode 600, root): Docker never shows a secret's value again (for psql or
# redis-cli by hand; the application mounts the secrets themselves as files).
secrets_dir=${HOSTING_STATE_DIR:-/var/lib/hosting}/secrets
ensure_secrets() {
  local name
  for name in "$SECRET_PREFIX"_{pg_superuser,pg_app,pg_replication,redis}; do
    if ! docker secret inspect "$name" >/dev/null 2>&1; then
      mkdir -p "$secrets_dir" && chmod 700 "$secrets_dir"
      (umask 077 && openssl rand -hex 16 | tr -d '\n' > "$secrets_dir/$name")
      docker secret create "$name" "$secrets_dir/$name" >/dev/null
      log "secret $name created (random; its value is in $secrets_dir/$name)"
    fi
  done
  name=${SECRET_PREFIX}_tls
  docker secret inspect "$name" >/dev/null 2>&1 && return
  local pem
  pem=$(mktemp)
  if [ -n "${TLS_CERT_FILE:-}" ]; then
    cat "$TLS_CERT_FILE" "${TLS_KEY_FILE:-/dev/null}" >"$pem"
    openssl x509 -in "$pem" -noout || die "TLS_CERT_FILE $TLS_CERT_FILE holds no certificate"
    openssl pkey -in "$pem" -noout || die "no private key in ${TLS_KEY_FILE:-$TLS_CERT_FILE}"
  else
    local cn=${TLS_NAME:-$(hostname -f)}
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 90 -nodes \
      -subj "/CN=$cn" -addext "subjectAltName=DNS:$cn" -keyout - -out - 2>/dev/null >"$pem"
  fi
  docker secret create "$name" "$pem" >/dev/null
  rm -f "$pem"
  log "secret $name created (${TLS_CERT_FILE:-self-signed for ${TLS_NAME:-$(hostname -f)}})"
}

# hosting.pg-primary and hosting.pg-replica name the nodes of the two databases. On a one-node
# Swarm both go on it; on more nodes the operator chooses (two different nodes).
ensure_labels() {
  local nodes primary replica
  nodes=$(docker node ls -q | wc -l)
  primary=$(docker node ls -q | xargs docker node inspect -f '{{index .Spec.Labels "hosting.pg-primary"}}' | grep -c true || true)
  replica=$(docker node ls -q | xargs docker node inspect -f '{{index .Spec.Labels "hosting.pg-replica"}}' | grep -c true || true)
  if [ "$primary" -ge 1 ] && [ "$replica" -ge 1 ]; then return; fi
  if [ "$nodes" -eq 1 ]; then
    docker node update --label-add hosting.pg-primary=true --label-add hosting.pg-replica=true \
      "$(docker node ls -q)" >/dev/null
    log "one node: labelled it hosting.pg-primary and hosting.pg-replica"
    return
  fi
  die "label the databases' nodes first (two different nodes):
  docker node update --label-add hosting.pg-primary=true NODE_A
  docker node update --label-add hosting.pg-replica=true NODE_B"
}

wait_converged() {
  local deadline=$((SECONDS + wait_s)) pending
  while :; do
    pending=$(services | awk '{split($2, r, "/"); if (r[1] != r[2] || r[2] == 0) print}')
    if [ -z "$pending" ] && [ -n "$(services)" ]; then return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "swarm-stack: not converged after ${wait_s}s:" >&2
      echo "$pending" >&2
      local svc
      for svc in $(echo "$pending" | awk '{print $1}'); do
        echo "--- docker service ps $svc" >&2
        docker service ps --no-trunc --format '{{.CurrentState}} {{.Error}}' "$svc" | head -5 >&2
      done
      return 1
    fi
    sleep 2
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
  up)
    if [ "${1:-}" != --no-build ]; then
      "$root/scripts/images.sh" haproxy postgres redis prometheus alertmanager exporters
    fi
    docker network inspect hosting >/dev/null 2>&1 ||
      docker network create -d overlay --attachable --label hosting.managed=true hosting >/dev/null
    ensure_secrets
    ensure_labels
    mkdir -p "$HAPROXY_RUN_DIR" "${TLS_DIR:-/var/lib/hosting/tls}"
    # Swarm configs cannot change: each version of the file is a config of its own.
    PROMETHEUS_CONFIG_VERSION=$(sha256sum "$root/deploy/swarm/prometheus.yml" | cut -c1-12)
    export PROMETHEUS_CONFIG_VERSION
    log "deploying stack $stack"
    # Local images: never ask a registry for their digests.
    docker stack deploy --resolve-image never --prune -c "$root/deploy/swarm/stack.yml" "$stack"
    wait_converged
    log "converged:"
    services | sed 's/^/  /'
    log "HAProxy's runtime API for hostd: $HAPROXY_RUN_DIR/admin.sock"
    ;;
  status)
    services
    ;;
  wait)
    wait_converged
    ;;
  down)
    docker stack rm "$stack" >/dev/null 2>&1 || true
    deadline=$((SECONDS + 120))
    while [ -n "$(services)" ] ||
          [ -n "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" ]; do
      [ "$SECONDS" -lt "$deadline" ] || die "stack $stack still has containers after 120 s"
      sleep 1
    done
    if [ "${1:-}" = --volumes ]; then
      # shellcheck disable=SC2046
      docker volume rm $(docker volume ls -q --filter "label=com.docker.stack.namespace=$stack") \
        >/dev/null 2>&1 || true
    fi
    log "stack $stack removed"
    ;;
  *)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 2
    ;;
esac
