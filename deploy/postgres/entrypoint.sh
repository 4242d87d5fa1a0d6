#!/usr/bin/env bash
# hosting/postgres entrypoint: one image, two roles.
#
#   PG_ROLE=primary  first start: initdb, the application's role and database, a replication
#                    role and one physical replication slot per name in REPLICATION_SLOTS.
#   PG_ROLE=replica  first start: waits for PRIMARY_HOST, copies it with pg_basebackup through
#                    its slot (REPLICATION_SLOT) and streams from it from then on (hot standby).
#
# Later starts reuse the data directory as it is. Passwords come from the environment or, for
# Swarm secrets, from files: X_FILE wins over X for POSTGRES_PASSWORD, APP_DB_PASSWORD and
# REPLICATION_PASSWORD.
set -euo pipefail

pgbin=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA

log() { printf '{"level":"info","msg":"%s","role":"%s"}\n' "$*" "${PG_ROLE:-primary}"; }
die() { printf '{"level":"error","msg":"%s","role":"%s"}\n' "$*" "${PG_ROLE:-primary}" >&2; exit 1; }

# secret NAME: the value of $NAME, or the contents of the file $NAME_FILE.
secret() {
  local file_var="${1}_FILE"
  if [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || die "$file_var=${!file_var}: cannot read it"
    tr -d '\n' < "${!file_var}"
  else
    printf '%s' "${!1:-}"
  fi
}

as_pg() { runuser -u postgres -- "$@"; }

# SQL string literal.
lit() { printf "'%s'" "${1//\'/\'\'}"; }

init_primary() {
  local su_pw app_pw repl_pw
  su_pw=$(secret POSTGRES_PASSWORD)
  app_pw=$(secret APP_DB_PASSWORD)
  repl_pw=$(secret REPLICATION_PASSWORD)
  [ -n "$su_pw" ] || die "POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is required"
  [ -n "$repl_pw" ] || die "REPLICATION_PASSWORD (or REPLICATION_PASSWORD_FILE) is required"
  log "initdb in $PGDATA"
  local pwfile
  pwfile=$(mktemp)
  printf '%s\n' "$su_pw" > "$pwfile"
  chown postgres "$pwfile"
  as_pg "$pgbin/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" \
    --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  cat /etc/hosting/postgres/primary.conf >> "$PGDATA/postgresql.conf"
  cat >> "$PGDATA/pg_hba.conf" <<'HBA'
# hosting: the application and the replicas from any address of the container's networks.
host    all             all             0.0.0.0/0       scram-sha-256
host    replication     replicator      0.0.0.0/0       scram-sha-256
HBA
  # Roles, database and slots on a server that listens on no TCP address yet.
  as_pg "$pgbin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null
  {
    echo "CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD $(lit "$repl_pw");"
    if [ -n "${APP_DB_USER:-}" ]; then
      [ -n "$app_pw" ] || die "APP_DB_USER=$APP_DB_USER needs APP_DB_PASSWORD (or APP_DB_PASSWORD_FILE)"
      echo "CREATE ROLE \"$APP_DB_USER\" WITH LOGIN PASSWORD $(lit "$app_pw");"
      echo "CREATE DATABASE \"${APP_DB_NAME:-app}\" OWNER \"$APP_DB_USER\";"
    fi
    local slot
    for slot in ${REPLICATION_SLOTS:-}; do
      echo "SELECT pg_create_physical_replication_slot($(lit "$slot"));"
    done
  } | as_pg psql -v ON_ERROR_STOP=1 -q -U postgres -d postgres >/dev/null
  as_pg "$pgbin/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  log "primary initialised (slots: ${REPLICATION_SLOTS:-none})"
}

init_replica() {
  local repl_pw host port
  repl_pw=$(secret REPLICATION_PASSWORD)
  host=${PRIMARY_HOST:?PG_ROLE=replica needs PRIMARY_HOST}
  port=${PRIMARY_PORT:-5432}
  [ -n "$repl_pw" ] || die "REPLICATION_PASSWORD (or REPLICATION_PASSWORD_FILE) is required"
  local waited=0
  until pg_isready -q -h "$host" -p "$port" -t 2; do
    [ "$waited" -lt "${PRIMARY_WAIT_S:-120}" ] || die "the primary $host:$port did not answer in ${PRIMARY_WAIT_S:-120} s"
    sleep 1
    waited=$((waited + 1))
  done
  log "pg_basebackup from $host:$port (slot ${REPLICATION_SLOT:-none})"
  local slot_args=()
  [ -n "${REPLICATION_SLOT:-}" ] && slot_args=(-S "$REPLICATION_SLOT")
  # -R writes primary_conninfo (and the slot) and standby.signal: the copy starts streaming.
  PGPASSWORD=$repl_pw as_pg "$pgbin/pg_basebackup" -h "$host" -p "$port" -U replicator \
    -D "$PGDATA" -R -X stream --checkpoint=fast "${slot_args[@]}" \
    || { rm -rf "${PGDATA:?}"/*; die "pg_basebackup from $host:$port failed"; }
  # The password stays in primary_conninfo (postgresql.auto.conf, mode 0600, in PGDATA).
  log "replica initialised"
}

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  case "${PG_ROLE:-primary}" in
    primary) init_primary ;;
    replica) init_replica ;;
    *) die "PG_ROLE=${PG_ROLE}: want primary or replica" ;;
  esac
fi
log "starting postgres"
# setpriv execs postgres itself (runuser would stay as its parent and not pass the stop
# signal on): postgres is PID 1 and gets STOPSIGNAL (SIGINT, a fast shutdown) directly.
exec setpriv --reuid=postgres --regid=postgres --init-groups "$pgbin/postgres" -D "$PGDATA" "$@"
