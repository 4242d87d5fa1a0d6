#!/usr/bin/env bash
# (Re)starts the platform on this machine: HAProxy (the front door, hosting/haproxy:dev on the
# services' overlay network, 127.0.0.1:8080 for "web", :8443 for it over HTTPS (certificates in
# $HOSTING_STATE_DIR/tls: scripts/tls.sh, docs/tls.md) and :8081 for "web-preview"), hostd
# programming it through the runtime API, and a hostagent reporting this node's tasks.
# Needs dockerd with a Swarm and the images (scripts/start-docker.sh, scripts/images.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
state=${HOSTING_STATE_DIR:-/var/lib/hosting}
sock_dir=/run/hosting/haproxy
mkdir -p "$state/log" "$sock_dir"

docker network inspect hosting >/dev/null 2>&1 ||
  docker network create -d overlay --attachable --label hosting.managed=true hosting >/dev/null
docker rm -f hosting-haproxy >/dev/null 2>&1 || true
docker run -d --name hosting-haproxy --restart unless-stopped --network hosting \
  -p 127.0.0.1:8080:8080 -p 127.0.0.1:8443:8443 -p 127.0.0.1:8081:8081 -p 127.0.0.1:8404:8404 \
  -e HTTPS_PUBLIC_PORT=8443 -v "$state/tls:/etc/hosting/tls" \
  -v "$sock_dir:/run/haproxy" hosting/haproxy:dev >/dev/null
for _ in $(seq 1 100); do [ -S "$sock_dir/admin.sock" ] && break; sleep 0.1; done
[ -S "$sock_dir/admin.sock" ] || { docker logs hosting-haproxy >&2; exit 1; }
echo "platform-up: HAProxy on 127.0.0.1:8080 (web), :8443 (web, HTTPS), :8081 (web-preview), :8404/stats"

"$root/scripts/hostd-up.sh" --haproxy "$sock_dir/admin.sock" "$@"

pidfile="$state/hostagent.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  kill -TERM "$(cat "$pidfile")"
  for _ in $(seq 1 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
fi
setsid "$build/agent/hostagent" --controller 127.0.0.1:50051 --metrics-listen 127.0.0.1:9465 \
  --token-file "$state/agent.token" >>"$state/log/hostagent.log" 2>&1 < /dev/null &
echo $! > "$pidfile"
export HOSTCTL_TOKEN_FILE=${HOSTCTL_TOKEN_FILE:-$state/admin.token}
for _ in $(seq 1 50); do
  if "$build/hostctl/hostctl" nodes 2>/dev/null | grep -q connected; then
    echo "platform-up: hostagent connected (pid $(cat "$pidfile"), log $state/log/hostagent.log)"
    exit 0
  fi
  sleep 0.2
done
echo "platform-up: hostagent did not connect; last log lines:" >&2
tail -20 "$state/log/hostagent.log" >&2
exit 1
