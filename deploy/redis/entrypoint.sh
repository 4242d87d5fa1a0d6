#!/usr/bin/env bash
# hosting/redis entrypoint: redis-server with deploy/redis/redis.conf, and a password from
# REDIS_PASSWORD or (Swarm secrets) the file REDIS_PASSWORD_FILE when either is set.
set -euo pipefail
args=(/etc/redis/hosting.conf)
if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
  [ -r "$REDIS_PASSWORD_FILE" ] || { echo "REDIS_PASSWORD_FILE=$REDIS_PASSWORD_FILE: cannot read it" >&2; exit 1; }
  REDIS_PASSWORD=$(tr -d '\n' < "$REDIS_PASSWORD_FILE")
fi
if [ -n "${REDIS_PASSWORD:-}" ]; then
  # Through a config include on a private file, not the command line (ps would show it).
  umask 077
  printf 'requirepass "%s"\n' "$REDIS_PASSWORD" > /run/redis/auth.conf
  args+=(--include /run/redis/auth.conf)
fi
exec redis-server "${args[@]}" "$@"
