#!/bin/sh
# The front door's entrypoint (hosting/haproxy): prepares $HOSTING_TLS_DIR, then runs the command.
#   certs/                 the certificates HAProxy serves (PEM: chain and key), picked by SNI
#   https-redirect.map     "<host> on" lines: plain HTTP for these hosts is redirected to HTTPS
#   acme-challenge/        pending ACME HTTP-01 challenges (written by scripts/tls.sh)
# Certificates given as secrets (/run/secrets/tls-*.pem, e.g. a Swarm secret mounted under that
# name) are copied into certs/ at each start, so a rotated secret takes effect on the next start.
# With no certificate at all, a self-signed one for $HOSTING_TLS_SELF_SIGNED_NAME (default
# localhost) is made so HTTPS answers from the first start; scripts/tls.sh replaces it.
set -eu
dir=${HOSTING_TLS_DIR:-/etc/hosting/tls}
mkdir -p "$dir/certs" "$dir/acme-challenge"
[ -f "$dir/https-redirect.map" ] || : >"$dir/https-redirect.map"
for secret in /run/secrets/tls-*.pem; do
  [ -f "$secret" ] || continue
  cp "$secret" "$dir/certs/$(basename "$secret")"
  chmod 600 "$dir/certs/$(basename "$secret")"
done
if ! ls "$dir"/certs/*.pem >/dev/null 2>&1; then
  name=${HOSTING_TLS_SELF_SIGNED_NAME:-localhost}
  umask 077
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 90 -nodes \
    -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
    -keyout "$dir/certs/self-signed.key.tmp" -out "$dir/certs/self-signed.crt.tmp" 2>/dev/null
  cat "$dir/certs/self-signed.crt.tmp" "$dir/certs/self-signed.key.tmp" >"$dir/certs/self-signed.pem"
  rm -f "$dir/certs/self-signed.crt.tmp" "$dir/certs/self-signed.key.tmp"
  echo "hosting/haproxy: no certificate in $dir/certs; made a self-signed one for $name" >&2
fi
exec "$@"
