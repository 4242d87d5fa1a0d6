# shellcheck shell=bash
# Bounded waits for the scripts: a command that reaches the network (apt-get, debootstrap, npm,
# docker build) gets a time limit and a few tries, and a failure names what did not answer.
# Sourced, not run.
#
#   retry TRIES SECONDS WHAT -- CMD...   runs CMD at most TRIES times, each for at most SECONDS
retry() {
  local tries=$1 limit=$2 what=$3 attempt rc
  shift 3
  [ "${1:-}" = "--" ] && shift
  for attempt in $(seq 1 "$tries"); do
    rc=0
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    [ "$rc" -eq 0 ] && return 0
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      echo "retry: $what did not finish within ${limit}s (try $attempt of $tries)" >&2
    else
      echo "retry: $what failed with exit code $rc (try $attempt of $tries)" >&2
    fi
    [ "$attempt" -lt "$tries" ] && sleep $((attempt * 5))
  done
  echo "retry: giving up on $what after $tries tries" >&2
  return 1
}

# apt-get options: a package mirror that stops answering fails a download in 30 s, and each
# download is tried three times.
# shellcheck disable=SC2034  # used by the scripts that source this file
APT_OPTS=(-o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 -o Acquire::Retries=3)

# The Debian mirror apt already uses on this machine (not the security archive), or
# deb.debian.org.
debian_mirror() {
  local m
  m=$(grep -hoE '^(URIs:|deb) *https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
    | grep -v security | head -1 | sed -E 's/^(URIs:|deb) *//' || true)
  echo "${m:-http://deb.debian.org/debian}"
}
