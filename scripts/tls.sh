#!/usr/bin/env bash
# The front door's certificates (docs/tls.md). HAProxy serves every PEM file (chain + key) in
# $TLS_DIR/certs by SNI; this script changes them through HAProxy's runtime API, so a new or
# renewed certificate is served at once and no connection is dropped (no reload, no restart).
#
#   scripts/tls.sh status                       the certificates HAProxy serves, and until when
#   scripts/tls.sh install NAME CHAIN.pem [KEY.pem]
#                                               serve a certificate (a new name, or replace one)
#   scripts/tls.sh issue DOMAIN [DOMAIN...]     obtain a certificate over ACME (HTTP-01 through
#                                               the front door) and serve it; the domains are
#                                               remembered for renew
#   scripts/tls.sh renew [--force]              renew what issue obtained when it expires within
#                                               RENEW_DAYS (every certificate with --force)
#   scripts/tls.sh redirect HOST on|off         redirect plain HTTP for HOST to HTTPS (or stop)
#
# Settings (environment):
#   TLS_DIR         the directory mounted into HAProxy at $HAPROXY_TLS_DIR (default
#                   /var/lib/hosting/tls; the stacks mount it)
#   HAPROXY_TLS_DIR where HAProxy sees TLS_DIR (default /etc/hosting/tls)
#   HAPROXY_SOCKET  HAProxy's runtime API (default /run/hosting/haproxy/admin.sock)
#   ACME_CA         the ACME directory URL (default Let's Encrypt's production one)
#   ACME_CA_BUNDLE  a CA file to trust for the ACME server's own HTTPS (e.g. a test CA)
#   ACME_EMAIL      the ACME account's contact (optional)
#   ACME_STATE_DIR  dehydrated's account, keys and certificates (default /var/lib/hosting/acme)
#   RENEW_DAYS      renew a certificate that expires within this many days (default 30)
set -euo pipefail

TLS_DIR=${TLS_DIR:-/var/lib/hosting/tls}
HAPROXY_TLS_DIR=${HAPROXY_TLS_DIR:-/etc/hosting/tls}
HAPROXY_SOCKET=${HAPROXY_SOCKET:-/run/hosting/haproxy/admin.sock}
ACME_CA=${ACME_CA:-https://acme-v02.api.letsencrypt.org/directory}
ACME_STATE_DIR=${ACME_STATE_DIR:-/var/lib/hosting/acme}
RENEW_DAYS=${RENEW_DAYS:-30}

die() {
  echo "tls.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
}

# One runtime API command (a payload after "<<" ends with an empty line); prints the answer.
api() {
  [ -S "$HAPROXY_SOCKET" ] || die "no HAProxy runtime API at $HAPROXY_SOCKET (set HAPROXY_SOCKET)"
  printf '%s\n' "$1" | socat -t 10 stdio "unix-connect:$HAPROXY_SOCKET"
}

# Fails with HAProxy's answer unless it contains $2.
api_expect() {
  local answer
  answer=$(api "$1")
  case "$answer" in
    *"$2"*) ;;
    *) die "HAProxy refused '${1%%<<*}': $answer" ;;
  esac
}

valid_name() {
  [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "'$1' is not a certificate or host name"
}

cmd_status() {
  local path
  api "show ssl cert" | grep -v '^#' | grep . | while read -r path; do
    echo "$path"
    api "show ssl cert $path" | grep -E '^(Subject|Subject Alternative Name|Issuer|Serial|notAfter):' | sed 's/^/  /'
  done
  echo "HTTPS redirect for: $(grep -E ' on$' "$TLS_DIR/https-redirect.map" 2>/dev/null | cut -d' ' -f1 | tr '\n' ' ')"
}

cmd_install() {
  if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
  local name=$1 chain=$2 key=${3:-}
  valid_name "$name"
  [ -r "$chain" ] || die "cannot read $chain"
  [ -z "$key" ] || [ -r "$key" ] || die "cannot read $key"
  local pem
  pem=$(mktemp)
  # shellcheck disable=SC2064
  trap "rm -f '$pem'" RETURN
  cat "$chain" ${key:+"$key"} >"$pem"
  # A certificate whose key is not its own would be refused by HAProxy at the next start.
  openssl x509 -in "$pem" -noout 2>/dev/null || die "$chain holds no PEM certificate"
  local cert_pub key_pub
  cert_pub=$(openssl x509 -in "$pem" -noout -pubkey 2>/dev/null)
  key_pub=$(openssl pkey -in "$pem" -pubout 2>/dev/null) || die "no private key in ${key:-$chain}"
  [ "$cert_pub" = "$key_pub" ] || die "the private key does not belong to the certificate in $chain"

  local path="$HAPROXY_TLS_DIR/certs/$name.pem"
  local known=no
  api "show ssl cert" | grep -qxF "$path" && known=yes
  [ $known = yes ] || api_expect "new ssl cert $path" "New empty certificate store"
  api_expect "set ssl cert $path <<
$(cat "$pem")
" "Transaction"
  api_expect "commit ssl cert $path" "Success"
  [ $known = yes ] || api_expect "add ssl crt-list $HAPROXY_TLS_DIR/certs $path" "Success"
  # On disk too, so the next start serves the same certificate.
  mkdir -p "$TLS_DIR/certs"
  install -m 600 "$pem" "$TLS_DIR/certs/.$name.pem.tmp"
  mv -f "$TLS_DIR/certs/.$name.pem.tmp" "$TLS_DIR/certs/$name.pem"
  echo "tls.sh: serving $name ($(openssl x509 -in "$pem" -noout -subject -enddate | tr '\n' ' '))"
}

cmd_redirect() {
  [ $# -eq 2 ] || usage
  local host=${1,,} state=$2 map="$HAPROXY_TLS_DIR/https-redirect.map"
  valid_name "$host"
  touch "$TLS_DIR/https-redirect.map"
  grep -vE "^$host " "$TLS_DIR/https-redirect.map" >"$TLS_DIR/.https-redirect.map.tmp" || true
  case "$state" in
    on)
      echo "$host on" >>"$TLS_DIR/.https-redirect.map.tmp"
      api_expect "set map $map $host on" ""
      api "show map $map" | grep -q " $host on$" || api_expect "add map $map $host on" ""
      ;;
    off) api "del map $map $host" >/dev/null ;;
    *) usage ;;
  esac
  mv -f "$TLS_DIR/.https-redirect.map.tmp" "$TLS_DIR/https-redirect.map"
  echo "tls.sh: HTTPS redirect for $host: $state"
}

# dehydrated's configuration: HTTP-01 challenges written where the front door answers them,
# this script as the hook that installs what it obtains.
dehydrated_config() {
  mkdir -p "$ACME_STATE_DIR" "$TLS_DIR/acme-challenge"
  local self
  self=$(readlink -f "$0")
  cat >"$ACME_STATE_DIR/config" <<EOF
CA="$ACME_CA"
CHALLENGETYPE="http-01"
BASEDIR="$ACME_STATE_DIR"
WELLKNOWN="$TLS_DIR/acme-challenge"
HOOK="$self"
KEY_ALGO=prime256v1
RENEW_DAYS="$RENEW_DAYS"
CONTACT_EMAIL="${ACME_EMAIL:-}"
EOF
  echo "$ACME_STATE_DIR/config"
}

dehydrated_run() {
  local config
  config=$(dehydrated_config)
  export TLS_DIR HAPROXY_TLS_DIR HAPROXY_SOCKET
  if [ -n "${ACME_CA_BUNDLE:-}" ]; then export CURL_CA_BUNDLE=$ACME_CA_BUNDLE; fi
  command -v dehydrated >/dev/null || die "dehydrated is not installed (apt-get install dehydrated)"
  if [ -z "$(ls -A "$ACME_STATE_DIR/accounts" 2>/dev/null)" ]; then
    dehydrated --config "$config" --register --accept-terms >/dev/null
  fi
  dehydrated --config "$config" "$@"
}

cmd_issue() {
  [ $# -ge 1 ] || usage
  local args=() d
  for d in "$@"; do
    valid_name "$d"
    args+=(--domain "${d,,}")
  done
  mkdir -p "$ACME_STATE_DIR"
  touch "$ACME_STATE_DIR/domains.txt"
  grep -qxF "${*,,}" "$ACME_STATE_DIR/domains.txt" || echo "${*,,}" >>"$ACME_STATE_DIR/domains.txt"
  dehydrated_run --cron "${args[@]}"
}

cmd_renew() {
  local force=()
  [ "${1:-}" = --force ] && force=(--force)
  [ -s "$ACME_STATE_DIR/domains.txt" ] || die "no certificate was issued here ($ACME_STATE_DIR/domains.txt)"
  local line args d
  while read -r line; do
    [ -n "$line" ] || continue
    args=()
    for d in $line; do args+=(--domain "$d"); done
    dehydrated_run --cron "${force[@]}" "${args[@]}"
  done <"$ACME_STATE_DIR/domains.txt"
}

# dehydrated's hook events (HOOK= this script).
hook() {
  case "$1" in
    deploy_cert)
      # deploy_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE CHAINFILE TIMESTAMP
      cmd_install "$2" "$5" "$3"
      ;;
    invalid_challenge) echo "tls.sh: ACME challenge for $2 failed: $3" >&2 ;;
    request_failure) echo "tls.sh: ACME request failed ($2): $3" >&2 ;;
    *) ;;
  esac
}

case "${1:-}" in
  status) cmd_status ;;
  install) shift; cmd_install "$@" ;;
  issue) shift; cmd_issue "$@" ;;
  renew) shift; cmd_renew "$@" ;;
  redirect) shift; cmd_redirect "$@" ;;
  deploy_cert | deploy_challenge | clean_challenge | invalid_challenge | request_failure | \
    startup_hook | exit_hook | unchanged_cert | generate_csr | sync_cert | deploy_ocsp | \
    this_hookscript_is_broken__dehydrated_is_working_fine__please_ignore_unknown_hooks_in_your_script)
    hook "$@" ;;
  *) usage ;;
esac
