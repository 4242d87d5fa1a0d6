#!/usr/bin/env bash
# A real multi-node Docker Swarm on this one machine: N dockerd processes, each with its own
# containerd, data root, exec root, socket, hostname and network namespace, joined by veth pairs
# to a private bridge. Node 1 initialises the Swarm, nodes 2..M join as managers, the rest as
# workers; overlay networks run over VXLAN between the namespaces. The host's hosting/* images
# are loaded into every node (the namespaces have no default route: nothing is pulled).
#
#   scripts/cluster-up.sh [N] [--managers M]    (default: 3 nodes, 1 manager)
#   scripts/cluster-down.sh                     (removes all of it)
#
# Node i: namespace hc-n$i, address $NET.$((10+i)), engine unix:///run/hc/n$i/docker.sock.
# The host is $NET.1 on bridge hc-br0. Needs root, and a host dockerd with the images
# (scripts/start-docker.sh, scripts/images.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster-lib.sh
source "$root/scripts/cluster-lib.sh"

nodes=3
managers=1
while [ $# -gt 0 ]; do
  case "$1" in
    --managers) managers=$2; shift 2 ;;
    --managers=*) managers=${1#*=}; shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    [0-9]*) nodes=$1; shift ;;
    *) echo "cluster-up: unknown argument '$1' (usage: cluster-up.sh [N] [--managers M])" >&2; exit 2 ;;
  esac
done
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 50 ]; then
  echo "cluster-up: N must be 1..50, not $nodes" >&2; exit 2
fi
if [ "$managers" -lt 1 ] || [ "$managers" -gt "$nodes" ]; then
  echo "cluster-up: --managers must be 1..$nodes, not $managers" >&2; exit 2
fi
if [ -e "$HC_STATE/nodes" ]; then
  echo "cluster-up: a cluster is already up ($(cat "$HC_STATE/nodes") nodes; state in $HC_STATE);" \
       "run scripts/cluster-down.sh first" >&2
  exit 1
fi
for tool in ip nsenter unshare dockerd containerd iptables; do
  command -v "$tool" >/dev/null || { echo "cluster-up: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
docker version >/dev/null 2>&1 || { echo "cluster-up: the host dockerd does not answer; run scripts/start-docker.sh" >&2; exit 1; }

mkdir -p "$HC_STATE" "$HC_RUN"
echo "$nodes" > "$HC_STATE/nodes"
# From here a failure leaves state that cluster-down.sh removes; say so.
trap 'echo "cluster-up: failed; scripts/cluster-down.sh removes what was made" >&2' ERR

# The private bridge: the host reaches the nodes' published ports and the agents reach hostd
# on $NET.1.
bridge_up "$HC_BRIDGE" "$NET.1"

for i in $(seq 1 "$nodes"); do
  hc_make_netns "$i"
  hc_start_node "$i"
done
for i in $(seq 1 "$nodes"); do hc_wait_engine "$i"; done

# The Swarm: node 1 initialises, the others join.
hc_docker 1 swarm init --advertise-addr "$(hc_addr 1)" --listen-addr "$(hc_addr 1):2377" >/dev/null
worker_token=$(hc_docker 1 swarm join-token -q worker)
manager_token=$(hc_docker 1 swarm join-token -q manager)
for i in $(seq 2 "$nodes"); do
  token=$worker_token
  [ "$i" -le "$managers" ] && token=$manager_token
  hc_docker "$i" swarm join --token "$token" --advertise-addr "$(hc_addr "$i")" \
    --listen-addr "$(hc_addr "$i"):2377" "$(hc_addr 1):2377" >/dev/null
done

# Every node gets the host's hosting/* images (one save, one load per node, in parallel).
mapfile -t images < <(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^hosting/' | grep -v ':<none>$' || true)
if [ "${#images[@]}" -gt 0 ]; then
  docker save "${images[@]}" -o "$HC_STATE/images.tar"
  pids=()
  for i in $(seq 1 "$nodes"); do
    hc_docker "$i" load -q -i "$HC_STATE/images.tar" >/dev/null & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  rm -f "$HC_STATE/images.tar"
fi

# Ready: every node Ready in the manager's view.
for _ in $(seq 1 120); do
  ready=$(hc_docker 1 node ls --format '{{.Status}}' | grep -c '^Ready$' || true)
  [ "$ready" -eq "$nodes" ] && break
  sleep 0.5
done
if [ "$ready" -ne "$nodes" ]; then
  echo "cluster-up: only $ready of $nodes nodes are Ready:" >&2
  hc_docker 1 node ls >&2
  exit 1
fi
trap - ERR
echo "cluster-up: $nodes nodes ($managers manager(s)), ${#images[@]} images on each"
hc_docker 1 node ls
echo "manager engine: DOCKER_HOST=unix://$HC_RUN/n1/docker.sock; host address for agents: $NET.1"
