#!/usr/bin/env bash
# ansible/site.yml run for real: two machines made on this host (tests/ansible/nodes.sh), the
# playbook converges them into a Swarm with the platform stack, hostd and both agents; a second
# run must change nothing, nor a run in check mode; testinfra (tests/ansible/test_cluster.py) then checks the result
# over SSH. The machines are removed at the end, whatever happened.
#
#   tests/ansible/converge.sh [BUILD_DIR]     (default: build; needs hostd, hostagent, hostctl)
#
# Needs root, the images (scripts/images.sh) and the packages of scripts/install-deps.sh.
# KEEP_NODES=1 leaves the machines up for a look (tests/ansible/nodes.sh down removes them).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
state=${HOSTING_ANSIBLE_NODES_STATE:-/var/lib/hosting/ansible-nodes}
export HOSTING_ANSIBLE_NODES_STATE=$state
nodes="$root/tests/ansible/nodes.sh"

log() { echo "converge: $*"; }
fail() { echo "converge: FAIL: $*" >&2; exit 1; }

for bin in controlplane/hostd agent/hostagent hostctl/hostctl; do
  [ -x "$build/$bin" ] || fail "$build/$bin is missing (scripts/build.sh)"
done
images=(hosting/haproxy:dev hosting/postgres:dev hosting/redis:dev hosting/prometheus:dev
        hosting/alertmanager:dev hosting/exporters:dev)
for image in "${images[@]}" hosting/node:dev; do
  docker image inspect "$image" >/dev/null 2>&1 || fail "image $image is missing (scripts/images.sh)"
done

# Machines left by an earlier run that was killed.
if [ -e "$state/nodes" ]; then "$nodes" down; fi
if [ "${KEEP_NODES:-0}" != 1 ]; then trap '"$nodes" down >/dev/null 2>&1 || true' EXIT; fi
"$nodes" up 2

# The test's settings, beside the inventory nodes.sh wrote. Each machine's dockerd keeps its
# containers' cgroups apart from the host's; hostd listens on the private bridge without TLS;
# the platform's images come from an archive (the machines reach no registry).
inventory=$state/inventory.ini
mkdir -p "$state/group_vars" "$state/host_vars"
docker save "${images[@]}" -o "$state/platform-images.tar"
cat >"$state/group_vars/all.yml" <<EOF
docker_daemon_options:
  cgroup-parent: "/{{ inventory_hostname }}"
hostd_allow_insecure_remote: true
platform_image_archive: $state/platform-images.tar
hosting_build_dir: $build
EOF
echo 'hosting_node_labels: {hosting.pg-primary: "true"}' >"$state/host_vars/hn-n1.yml"
echo 'hosting_node_labels: {hosting.pg-replica: "true"}' >"$state/host_vars/hn-n2.yml"

# PLAY RECAP lines of a run: "host : ok=N changed=N unreachable=N failed=N ...".
recap() { awk '/^PLAY RECAP/ { on = 1; next } on && NF' "$1"; }

cd "$root/ansible"
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
for run in 1 2; do
  log "ansible-playbook site.yml, run $run"
  start=$SECONDS
  if ! ansible-playbook -i "$inventory" site.yml >"$state/run$run.log" 2>&1; then
    tail -40 "$state/run$run.log" >&2
    fail "run $run of site.yml failed (log above)"
  fi
  recap "$state/run$run.log" | sed 's/^/  /'
  log "run $run took $((SECONDS - start)) s"
done
# Idempotence: the second run changed nothing anywhere.
changed=$(recap "$state/run2.log" | grep -v ' changed=0 ' || true)
if [ -n "$changed" ]; then
  grep -B1 -E '^changed:' "$state/run2.log" | grep -E '^TASK|^changed' >&2 || true
  fail "the second run changed something: $changed"
fi
log "second run: changed=0 on every machine"
# Check mode on the converged machines: it runs through and would change nothing.
log "ansible-playbook site.yml --check"
if ! ansible-playbook -i "$inventory" site.yml --check >"$state/check.log" 2>&1; then
  tail -40 "$state/check.log" >&2
  fail "site.yml --check failed on converged machines (log above)"
fi
changed=$(recap "$state/check.log" | grep -v ' changed=0 ' || true)
[ -z "$changed" ] || fail "site.yml --check would change something: $changed"
log "check mode: runs through, changed=0"

cd "$root"
log "testinfra: tests/ansible/test_cluster.py"
HOSTING_ANSIBLE_INVENTORY=$inventory /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/ansible/test_cluster.py --hosts=ansible://all --ansible-inventory="$inventory"
log "ok"
