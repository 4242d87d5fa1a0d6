#!/usr/bin/env bash
# One node of the local cluster (scripts/cluster-up.sh):
#   scripts/cluster-node.sh kill I     everything of node I dies at once (SIGKILL), as in a crash
#   scripts/cluster-node.sh start I    starts its containerd and dockerd again; it rejoins the Swarm
#   scripts/cluster-node.sh exec I CMD...  runs CMD in node I's network namespace
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster-lib.sh
source "$root/scripts/cluster-lib.sh"

usage() { sed -n 2,5p "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 i=$2
shift 2
[ -e "/run/netns/$(hc_ns "$i")" ] || { echo "cluster-node: node $i is not part of the local cluster" >&2; exit 1; }
case "$cmd" in
  kill)
    hc_kill_node "$i" KILL
    hc_unmount_node "$i"
    rm -f "$HC_RUN/n$i/docker.pid" "$HC_RUN/n$i/ctd.sock" "$HC_RUN/n$i/ctd.sock.ttrpc"
    echo "cluster-node: node $i killed" ;;
  start)
    [ -z "$(hc_node_pids "$i")" ] || { echo "cluster-node: node $i is running" >&2; exit 1; }
    hc_start_node "$i"
    hc_wait_engine "$i"
    echo "cluster-node: node $i started" ;;
  exec)
    [ $# -ge 1 ] || usage
    exec nsenter --net="/run/netns/$(hc_ns "$i")" -- "$@" ;;
  *) usage ;;
esac
