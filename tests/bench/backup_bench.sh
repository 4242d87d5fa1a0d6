#!/usr/bin/env bash
# The backup runbook against pg_basebackup alone, on the same pgbench database (scale 70 is about
# 1 GB), both copying from the streaming replica: pg_basebackup with the runbook's own flags,
# then `hostctl runbook run backup --wait` through a real hostd (base backup, pg_verifybackup,
# Redis snapshot, manifest, retention), and the same copy verified by hand (pg_verifybackup).
# Prints the times and their ratios. Then the
# restore's recovery time: pgbench writes for WRITE_SECONDS after the last backup (the WAL
# archive streams it), and `hostctl runbook run restore` (target latest) brings up a new
# instance from the backup plus that WAL, checked (row counts, amcheck).
#   tests/bench/backup_bench.sh [SCALE] [ROUNDS] [WRITE_SECONDS]
# Needs a build (scripts/build.sh) and PostgreSQL 15 and Redis (scripts/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
scale=${1:-70}
rounds=${2:-3}
write_seconds=${3:-30}
pgbin=/usr/lib/postgresql/15/bin
dir=$(mktemp -d /tmp/hosting-backup-bench-XXXXXX)
chmod 755 "$dir"
# A port nothing listens on (random in 20000-59999; ss from iproute2).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}
calc() { awk "BEGIN {print $*}"; }
pg=$(free_port) replica=$(free_port) redis=$(free_port) api=$(free_port)
hostd_pid=""
cleanup() {
  if [ -n "$hostd_pid" ]; then
    kill "$hostd_pid" 2>/dev/null || true
    wait "$hostd_pid" 2>/dev/null || true
  fi
  for d in "$dir"/restores/*/; do
    [ -f "$d/postmaster.pid" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
  done
  "$root/scripts/datastores.sh" stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"$root/scripts/datastores.sh" start "$dir" "$pg" "$replica" "$redis" >/dev/null
echo "pgbench -i -s $scale on the primary ..."
"$pgbin/pgbench" -q -i -s "$scale" -h 127.0.0.1 -p "$pg" -U postgres postgres >/dev/null 2>&1
lsn=$(psql -qtA -h 127.0.0.1 -p "$pg" -U postgres -c 'SELECT pg_current_wal_lsn()')
until [ "$(psql -qtA -h 127.0.0.1 -p "$replica" -U postgres -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ]; do
  sleep 0.5
done
size=$(psql -qtA -h 127.0.0.1 -p "$pg" -U postgres -c "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")

mkdir -p "$dir/hostd"
"$root/build/controlplane/hostd" --listen "127.0.0.1:$api" --metrics-listen "127.0.0.1:$(free_port)" \
  --http-listen "127.0.0.1:$(free_port)" \
  --store "sqlite://$dir/hostd/hostd.db" --data-dir "$dir/hostd" \
  --backup-repository "$dir/backups" \
  --backup-database "host=127.0.0.1 port=$replica user=postgres" \
  --backup-redis "127.0.0.1:$redis" \
  --wal-archive-source "host=127.0.0.1 port=$pg user=postgres" --restore-root "$dir/restores" \
  >"$dir/hostd.log" 2>&1 &
hostd_pid=$!
hostctl=("$root/build/hostctl/hostctl" --server "127.0.0.1:$api" --token-file "$dir/hostd/admin.token")
for _ in $(seq 1 100); do [ -s "$dir/hostd/admin.token" ] && "${hostctl[@]}" runbook list >/dev/null 2>&1 && break; sleep 0.1; done

now() { date +%s.%N; }
printf '\nbackup of %s (pgbench scale %s), from the replica, %s rounds\n\n' "$size" "$scale" "$rounds"
printf '| round | pg_basebackup s | runbook base-backup step s | ratio | whole run s (+ verify, Redis, manifest) | ratio | pg_basebackup + pg_verifybackup s | whole run / that |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
plain_all=() step_all=() runbook_all=() verified_all=()
for r in $(seq 1 "$rounds"); do
  rm -rf "$dir/plain"
  sync
  t0=$(now)
  "$pgbin/pg_basebackup" --dbname "host=127.0.0.1 port=$replica user=postgres" --pgdata "$dir/plain" \
    --wal-method=stream --checkpoint=fast --manifest-checksums=CRC32C --no-password
  t1=$(now)
  # The same copy verified by hand: what the runbook's copy + verify steps do.
  "$pgbin/pg_verifybackup" --quiet "$dir/plain"
  tv=$(now)
  rm -rf "$dir/plain"
  sync
  t2=$(now)
  "${hostctl[@]}" runbook run backup -p keep=1 --wait --wait-timeout 3600 >"$dir/run.out"
  t3=$(now)
  plain=$(calc "$t1 - $t0") runbook=$(calc "$t3 - $t2") verified=$(calc "$tv - $t0")
  step=$(sed -n 's/^ *base_backup_seconds: //p' "$dir/run.out")
  plain_all+=("$plain") step_all+=("$step") runbook_all+=("$runbook") verified_all+=("$verified")
  printf '| %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n' "$r" "$plain" "$step" \
    "$(calc "$step / $plain")" "$runbook" "$(calc "$runbook / $plain")" "$verified" \
    "$(calc "$runbook / $verified")"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mp=$(median "${plain_all[@]}") ms=$(median "${step_all[@]}") mr=$(median "${runbook_all[@]}")
mv=$(median "${verified_all[@]}")
printf '\nmedians: pg_basebackup %.2f s; the runbook base-backup step %.2f s (%.2fx); the whole run %.2f s (%.2fx); pg_basebackup + pg_verifybackup %.2f s (the whole run %.2fx that)\n' \
  "$mp" "$ms" "$(calc "$ms / $mp")" "$mr" "$(calc "$mr / $mp")" "$mv" "$(calc "$mr / $mv")"
echo "the last run's steps:"
grep -E 'step [0-9]/[0-9] .*: succeeded' -A1 "$dir/run.out" | grep -v '^--' || true
# Where the whole run's time goes: each step's time as hostd recorded it, and the run's, from the
# first step's start to the last one's end (what hostctl adds is the rest).
run_id=$(sed -n 's/^run \(backup-[0-9]*\) succeeded.*/\1/p' "$dir/run.out" | tail -1)
"${hostctl[@]}" -o json runbook status "$run_id" | python3 -c '
import json, sys
from datetime import datetime
def t(s): return datetime.fromisoformat(s.replace("Z", "+00:00"))
run = json.load(sys.stdin)
steps = run["steps"]
for s in steps:
    print("  %-12s %6.2f s" % (s["name"], (t(s["finished_at"]) - t(s["started_at"])).total_seconds()))
print("  in hostd     %6.2f s (first step start to last step end)" %
      (t(steps[-1]["finished_at"]) - t(steps[0]["started_at"])).total_seconds())
'

# Recovery time: WAL written after the last backup, replayed by a restore to latest.
echo
echo "pgbench writes for ${write_seconds} s after the backup ..."
"$pgbin/pgbench" -n -c 2 -T "$write_seconds" -h 127.0.0.1 -p "$pg" -U postgres postgres 2>/dev/null | grep -E '^(number of transactions actually processed|tps)' || true
wal=$(find "$dir/backups/wal" -maxdepth 1 -name '0*' | wc -l)
t0=$(now)
"${hostctl[@]}" runbook run restore -p target_time=latest -p port="$(free_port)" --wait --wait-timeout 3600 >"$dir/restore.out"
t1=$(now)
rto=$(sed -n 's/^ *recovery_seconds: //p' "$dir/restore.out")
printf '
restore to latest of %s + %s archived WAL segments (16 MiB each): recovery_seconds %s (verify, copy, replay, row counts, amcheck); the whole hostctl command %.2f s
' \
  "$size" "$wal" "$rto" "$(calc "$t1 - $t0")"
grep -E 'step [0-9]/[0-9] .*: succeeded' -A1 "$dir/restore.out" | grep -v '^--' || true
