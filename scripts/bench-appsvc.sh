#!/usr/bin/env bash
# Benchmarks appsvc with wrk from 127.0.0.1 against a real PostgreSQL primary + replica and
# Redis, and in the same run nginx answering a fixed JSON body of the same size as the ceiling
# of this machine. Prints a markdown table (requests/s, p50, p99, ratio to nginx).
#
#   scripts/bench-appsvc.sh [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-10}
conns=${2:-50}
work=$(mktemp -d /tmp/hosting-bench-XXXXXX)
chmod 755 "$work"  # the postgres user runs the databases below it
app_port=18181
nginx_port=18182

"$root/scripts/install-deps.sh" >/dev/null
"$root/scripts/build.sh" >/dev/null

cleanup() {
  if [ -n "${app_pid:-}" ] && kill -TERM "$app_pid" 2>/dev/null; then
    wait "$app_pid" 2>/dev/null || true
  fi
  if [ -f "$work/nginx.pid" ]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
  "$root/scripts/datastores.sh" stop "$work/ds" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# datastores.sh prints NAME=value words for appsvc's environment.
env_words=$("$root/scripts/datastores.sh" start "$work/ds" 55532 55533 56479)
read -ra env_pairs <<<"$(tr '\n' ' ' <<<"$env_words")"
export "${env_pairs[@]}"
export PORT=$app_port ACCESS_LOG=off DRAIN_DELAY_MS=0 DB_POOL_SIZE=${DB_POOL_SIZE:-16}
"$root/build/appsvc/appsvc" migrate >/dev/null 2>&1
# 1000 users to read.
psql -h 127.0.0.1 -p 55532 -U postgres -d app -qtA -c \
  "INSERT INTO users (name, email) SELECT 'user ' || i, 'user' || i || '@example.com' FROM generate_series(1, 1000) i" >/dev/null
"$root/build/appsvc/appsvc" serve >"$work/appsvc.log" 2>&1 &
app_pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$app_port/ready" >/dev/null && break; sleep 0.1; done

# nginx serving the same bytes as a cached user read.
body=$(curl -sf "http://127.0.0.1:$app_port/api/users/1")
mkdir -p "$work/nginx"
printf '%s' "$body" > "$work/nginx/user.json"
cat > "$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port reuseport;
    location / { default_type application/json; root $work/nginx; try_files /user.json =404; }
  }
}
CONF
nginx -c "$work/nginx.conf"
sleep 0.3

# Warm the caches: every user once, and the list.
for i in $(seq 1 1000); do echo "url = \"http://127.0.0.1:$app_port/api/users/$i\""; done > "$work/warm.cfg"
curl -sf -K "$work/warm.cfg" >/dev/null
curl -sf "http://127.0.0.1:$app_port/api/users" >/dev/null

run() {  # key name url [lua-script [script-argument]]
  local key=$1 name=$2 url=$3 script=${4:-} arg=${5:-}
  local out
  if [ -n "$script" ]; then
    out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$script" "$url" -- "$arg")
  else
    out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency "$url")
  fi
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out" | tr -d ',')
  printf '| %-34s | %10s | %8s | %8s | %6s |\n' "$name" "$rps" "$p50" "$p99" "$errors"
  echo "$rps" > "$work/rps-$key"
}

echo "machine: $(sed -n 's/^model name.*: //p' /proc/cpuinfo | head -1), $(nproc) cores; wrk -t2 -c$conns -d${duration}s from 127.0.0.1"
echo
printf '| %-34s | %10s | %8s | %8s | %6s |\n' "endpoint" "requests/s" "p50" "p99" "errors"
echo "|------------------------------------|------------|----------|----------|--------|"
run nginx "nginx, fixed JSON (ceiling)" "http://127.0.0.1:$nginx_port/"
run user "GET /api/users/:id (cached)" "http://127.0.0.1:$app_port/" "$root/tests/load/get_user.lua" 1000
run list "GET /api/users (cached list)" "http://127.0.0.1:$app_port/api/users"
run post "POST /api/users" "http://127.0.0.1:$app_port/api/users" "$root/tests/load/post_user.lua" "$(date +%s%N)"
run ready "GET /ready" "http://127.0.0.1:$app_port/ready"
nginx_rps=$(cat "$work/rps-nginx")
user_rps=$(cat "$work/rps-user")
echo
awk -v a="$user_rps" -v n="$nginx_rps" 'BEGIN {printf "cached GET /api/users/:id / nginx = %.2f\n", a / n}'
