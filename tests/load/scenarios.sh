#!/usr/bin/env bash
# The reference's four load scenarios, run here with wrk against any appsvc front door (the
# local stack's HAProxy by default), and a table of what they measured.
#
#   tests/load/scenarios.sh [--short | --duration S] [--url URL] [SCENARIO...]
#
# SCENARIO: basic (100 users), spike (500), stress (1000), soak (200); all four by default.
# Users are connections that each send a request, wait their think time (1 s, stress 0.1 s,
# +-20 %) and send the next: the reference's k6 shape (tests/load/k6/). Full durations are the
# reference's: basic 5 min, spike 2 min, stress 5 min, soak 2 h; --short runs each for 10 s
# (the test command does), --duration S for S seconds. The mix: 60 % GET /api/users/:id, 30 % GET /api/users, 10 % POST.
# Loopback or your own hosts only. Prints one row per scenario: users, requests, throughput,
# p50/p95/p99 and the error rate (connection errors, timeouts and HTTP >= 400, by kind). Exits
# non-zero when a scenario's error rate reaches 1 % (the k6 scripts' threshold).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=http://127.0.0.1:8080
short=0
fixed=0
scenarios=()
while [ $# -gt 0 ]; do
  case "$1" in
    --short) short=1 ;;
    --duration) fixed=$2; shift ;;
    --url) url=$2; shift ;;
    basic|spike|stress|soak) scenarios+=("$1") ;;
    *) echo "usage: $0 [--short | --duration S] [--url URL] [basic|spike|stress|soak]..." >&2; exit 2 ;;
  esac
  shift
done
[ ${#scenarios[@]} -gt 0 ] || scenarios=(basic spike stress soak)
command -v wrk >/dev/null || { echo "scenarios: wrk is not installed (scripts/install-deps.sh)" >&2; exit 1; }
# 1000 users need 1000 sockets and more.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# The GETs by id ask for users that exist: up to 100 are created when there are fewer, and
# their ids read back (ids have gaps: a refused insert still takes a sequence value).
list_ids() {
  curl -s -H 'Cache-Control: no-cache' "$url/api/users" |
    python3 -c 'import json, sys; print(",".join(str(u["id"]) for u in json.load(sys.stdin)["data"]))'
}
ids=$(list_ids || true)
have=$(tr ',' '\n' <<<"$ids" | grep -c . || true)
for i in $(seq "$((have + 1))" 100); do
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d "{\"name\":\"Seed $i\",\"email\":\"seed-$i-$(date +%s%N)@example.com\"}" "$url/api/users"
done
ids=$(list_ids || true)
[ -n "$ids" ] || { echo "scenarios: $url/api/users lists no user: is the stack up?" >&2; exit 1; }

# Warm-up, not counted: connections, pools and caches along the way fill before the first row
# (without it the first scenario's p95 carries them: 421 ms instead of 5 ms here).
wrk -t 2 -c 50 -d 5s -s "$here/users.lua" "$url" -- 100 "$ids" >/dev/null 2>&1 || true

printf '%-7s %6s %9s %9s %8s %8s %8s %7s\n' scenario users requests "req/s" "p50 ms" "p95 ms" "p99 ms" "errors"
failed=0
for s in "${scenarios[@]}"; do
  case "$s" in
    basic)  users=100;  think=1000; duration=300 ;;
    spike)  users=500;  think=1000; duration=120 ;;
    stress) users=1000; think=100;  duration=300 ;;
    soak)   users=200;  think=1000; duration=7200 ;;
  esac
  [ "$short" = 1 ] && duration=10
  [ "$fixed" -gt 0 ] && duration=$fixed
  # wrk's own timeout: a request slower than 5 s counts as a timeout error.
  out=$(wrk -t 2 -c "$users" -d "${duration}s" --timeout 5s -s "$here/users.lua" "$url" -- \
        "$think" "$ids" 2>&1) || { echo "$out" >&2; exit 1; }
  json=$(grep '^{"requests"' <<<"$out" | tail -1)
  [ -n "$json" ] || { echo "$out" >&2; exit 1; }
  python3 - "$s" "$users" "$json" <<'PY' || failed=1
import json, sys
s, users, j = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
errors = j["connect"] + j["read"] + j["write"] + j["status"] + j["timeout"]
n = j["requests"]
rate = n / (j["duration_us"] / 1e6)
pct = 100.0 * errors / n if n else 100.0
kinds = ", ".join(f"{k} {j[k]}" for k in ("connect", "read", "write", "status", "timeout") if j[k])
print(f"{s:<7} {users:>6} {n:>9} {rate:>9.1f} {j['p50_ms']:>8.1f} {j['p95_ms']:>8.1f} {j['p99_ms']:>8.1f} {pct:>6.2f}%"
      + (f" ({kinds})" if kinds else ""))
# The k6 scripts' threshold: under 1 % errors.
sys.exit(1 if pct >= 1.0 else 0)
PY
done
exit "$failed"
