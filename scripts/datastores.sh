#!/usr/bin/env bash
# Starts (or stops) a PostgreSQL 15 primary with a streaming replica and a Redis 7 on loopback,
# in a directory of their own: what appsvc needs, for tests, benchmarks and local runs.
#
#   scripts/datastores.sh start DIR [PG_PORT [REPLICA_PORT [REDIS_PORT]]]
#   scripts/datastores.sh stop DIR
#   scripts/datastores.sh stop-replica DIR | start-replica DIR | stop-redis DIR | start-redis DIR
#   scripts/datastores.sh stop-primary DIR | start-primary DIR
#   scripts/datastores.sh promote-replica DIR   (the replica becomes a primary; for failover tests)
#
# The database "app" belongs to the role "app" (password "app"). Ports default to 55432,
# 55433 and 56379. Prints the environment appsvc needs.
#
# DATASTORES_EXTRA_LISTEN=IP also listens on IP (e.g. the docker_gwbridge gateway, so that
# Swarm tasks reach PostgreSQL and Redis on this machine); password logins from the Docker
# address ranges and the local cluster's bridge (192.168.0.0/16: scripts/cluster-up.sh's nodes
# reach the host from there) are allowed on it.
set -euo pipefail
cmd=${1:?usage: datastores.sh start|stop|stop-replica|start-replica|stop-redis|start-redis DIR [PG_PORT REPLICA_PORT REDIS_PORT]}
dir=${2:?DIR required}
pgbin=/usr/lib/postgresql/15/bin
extra=${DATASTORES_EXTRA_LISTEN:-}
as_pg() { runuser -u postgres -- "$@"; }

ports_file="$dir/ports"
if [ "$cmd" = start ]; then
  pg_port=${3:-55432}; replica_port=${4:-55433}; redis_port=${5:-56379}
  mkdir -p "$dir"
  chown postgres:postgres "$dir"
  if ! runuser -u postgres -- test -x "$dir"; then
    echo "datastores: the postgres user cannot reach $dir (a parent directory is not searchable)" >&2
    exit 1
  fi
  echo "$pg_port $replica_port $redis_port" > "$ports_file"
else
  read -r pg_port replica_port redis_port < "$ports_file"
fi

start_primary() {
  if [ ! -f "$dir/primary/PG_VERSION" ]; then
    mkdir -p "$dir/primary"
    chown postgres:postgres "$dir" "$dir/primary"
    as_pg "$pgbin/initdb" -D "$dir/primary" -U postgres --auth=trust >/dev/null
    cat >> "$dir/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1${extra:+,$extra}'
port = $pg_port
unix_socket_directories = '$dir'
wal_level = replica
max_wal_senders = 5
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
    echo "host replication all 127.0.0.1/32 trust" >> "$dir/primary/pg_hba.conf"
    if [ -n "$extra" ]; then
      printf 'host all app %s scram-sha-256\n' 172.16.0.0/12 10.0.0.0/8 192.168.0.0/16 >> "$dir/primary/pg_hba.conf"
    fi
  fi
  as_pg "$pgbin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w -t 60 start >/dev/null
  as_pg psql -h "$dir" -p "$pg_port" -U postgres -qtA -c \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app LOGIN PASSWORD 'app'; END IF; END \$\$;" >/dev/null
  if [ -z "$(as_pg psql -h "$dir" -p "$pg_port" -U postgres -qtA -c "SELECT 1 FROM pg_database WHERE datname = 'app'")" ]; then
    as_pg psql -h "$dir" -p "$pg_port" -U postgres -qtA -c "CREATE DATABASE app OWNER app" >/dev/null
  fi
}

start_replica() {
  if [ ! -f "$dir/replica/PG_VERSION" ]; then
    mkdir -p "$dir/replica"
    chown postgres:postgres "$dir/replica"
    chmod 700 "$dir/replica"
    as_pg "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$pg_port" -U postgres -D "$dir/replica" -R -X stream --checkpoint=fast >/dev/null
    cat >> "$dir/replica/postgresql.conf" <<CONF
port = $replica_port
hot_standby = on
CONF
  fi
  as_pg "$pgbin/pg_ctl" -D "$dir/replica" -l "$dir/replica.log" -w -t 60 start >/dev/null
}

start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 ${extra:+"$extra" --protected-mode no} --save '' --appendonly no --repl-diskless-sync-delay 0 \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
  for _ in $(seq 1 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "datastores: redis did not start; see $dir/redis.log" >&2
  return 1
}

stop_pg() {
  local d=$1
  if [ -f "$d/postmaster.pid" ]; then as_pg "$pgbin/pg_ctl" -D "$d" -m fast -w stop >/dev/null || true; fi
}

stop_redis() {
  if [ -f "$dir/redis.pid" ]; then
    kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -f "$dir/redis.pid" ] || break
      kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null || break
      sleep 0.1
    done
    rm -f "$dir/redis.pid"
  fi
}

case "$cmd" in
  start)
    start_primary
    start_replica
    start_redis
    cat <<ENV
DB_HOST=127.0.0.1 DB_PORT=$pg_port DB_NAME=app DB_USER=app DB_PASSWORD=app
DB_REPLICA_HOST=127.0.0.1 DB_REPLICA_PORT=$replica_port REDIS_HOST=127.0.0.1 REDIS_PORT=$redis_port
ENV
    ;;
  stop)
    stop_redis
    stop_pg "$dir/replica"
    stop_pg "$dir/primary"
    ;;
  stop-replica) stop_pg "$dir/replica" ;;
  stop-primary) stop_pg "$dir/primary" ;;
  start-primary) as_pg "$pgbin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w -t 60 start >/dev/null ;;
  promote-replica) as_pg "$pgbin/pg_ctl" -D "$dir/replica" -w -t 60 promote >/dev/null ;;
  start-replica) start_replica ;;
  stop-redis) stop_redis ;;
  start-redis) start_redis ;;
  *) echo "datastores: unknown command $cmd" >&2; exit 2 ;;
esac
