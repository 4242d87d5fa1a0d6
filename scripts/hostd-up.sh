#!/usr/bin/env bash
# (Re)starts hostd in the background on its default addresses with the embedded store under
# HOSTING_STATE_DIR (default /var/lib/hosting). Logs: $HOSTING_STATE_DIR/log/hostd.log.
# At its first start hostd writes an admin token and an agent join token there (admin.token,
# agent.token, mode 0600; docs/security.md); hostctl finds the admin one through
# HOSTCTL_TOKEN_FILE (or by itself under /var/lib/hosting).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
state=${HOSTING_STATE_DIR:-/var/lib/hosting}
mkdir -p "$state/log"
pidfile="$state/hostd.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "hostd-up: stopping the running hostd (pid $(cat "$pidfile"))"
  kill -TERM "$(cat "$pidfile")"
  for _ in $(seq 1 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
fi
# The web console, when it is built (scripts/build-console.sh) and no --console-dir is given.
console=()
if [ -f "$root/console/dist/index.html" ] && [[ " $* " != *" --console-dir"* ]]; then
  console=(--console-dir "$root/console/dist")
fi
setsid "$build/controlplane/hostd" --data-dir "$state" "${console[@]}" "$@" >>"$state/log/hostd.log" 2>&1 < /dev/null &
echo $! > "$pidfile"
export HOSTCTL_TOKEN_FILE=${HOSTCTL_TOKEN_FILE:-$state/admin.token}
for _ in $(seq 1 50); do
  if [ -f "$HOSTCTL_TOKEN_FILE" ] && "$build/hostctl/hostctl" --timeout 1 service list >/dev/null 2>&1; then
    echo "hostd-up: hostd serving on 127.0.0.1:50051 (pid $(cat "$pidfile"), log $state/log/hostd.log)"
    exit 0
  fi
  sleep 0.2
done
echo "hostd-up: hostd did not answer; last log lines:" >&2
tail -20 "$state/log/hostd.log" >&2
exit 1
