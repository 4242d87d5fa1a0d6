#!/usr/bin/env bash
# Healthy when the server answers on its socket and, on a replica, when it is in recovery and
# its WAL receiver is streaming from the primary.
set -euo pipefail
pg_isready -q -h /run/postgresql -U postgres -d postgres -t 2
[ "${PG_ROLE:-primary}" = replica ] || exit 0
state=$(runuser -u postgres -- psql -h /run/postgresql -Atqc \
  "SELECT pg_is_in_recovery()::text || ' ' || coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')")
[ "$state" = "true streaming" ] || { echo "replica: $state" >&2; exit 1; }
