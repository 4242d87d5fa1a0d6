#!/usr/bin/env bash
# The repository's configuration, checked by the tools that will read it: every shell script
# (shellcheck), HAProxy's configuration (haproxy -c), Prometheus's rules (promtool check rules)
# and their unit tests (promtool test rules: each alert fires on its condition and not
# before). A missing tool is a failure: scripts/install-deps.sh installs them all.
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
for tool in shellcheck haproxy promtool; do
  command -v "$tool" >/dev/null || { echo "FAIL  $tool is not installed (scripts/install-deps.sh)"; exit 1; }
done

mapfile -t scripts < <(find . -name '*.sh' -not -path './build*' -not -path '*/node_modules/*' \
  -not -path './.git/*' | sort)
check "shellcheck (${#scripts[@]} scripts)" shellcheck -x -P SCRIPTDIR "${scripts[@]}"
check "haproxy -c deploy/haproxy/haproxy.cfg" haproxy -c -f deploy/haproxy/haproxy.cfg
mapfile -t rules < <(find deploy/prometheus/rules -name '*.yml' | sort)
check "promtool check rules (${#rules[@]} files)" promtool check rules "${rules[@]}"
mapfile -t rule_tests < <(find deploy/prometheus/tests -name '*_test.yml' | sort)
check "promtool test rules (${#rule_tests[@]} files)" promtool test rules "${rule_tests[@]}"
exit "$failed"
