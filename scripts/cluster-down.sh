#!/usr/bin/env bash
# Removes the local cluster scripts/cluster-up.sh made, leaving nothing behind: every node's
# processes (dockerd, containerd, shims, containers, agents in its namespace), mounts, cgroups,
# namespace and veth, the bridge, the host's iptables rules and the state directories.
# Safe to run when no cluster (or half of one) is up.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster-lib.sh
source "$root/scripts/cluster-lib.sh"

nodes=$(ip netns list | awk '{print $1}' | sed -n 's/^hc-n\([0-9]\+\)$/\1/p' | sort -n)
# A clean stop, all nodes at once: dockerd stops its containers, then containerd goes.
for i in $nodes; do hc_kill_node "$i" TERM & done
wait
for i in $nodes; do
  hc_unmount_node "$i"
  hc_remove_cgroups "$i"
  ip netns del "$(hc_ns "$i")" 2>/dev/null || true
  ip link del "hc-v$i" 2>/dev/null || true
done
bridge_down "$HC_BRIDGE"
for d in "$HC_RUN"/n* "$HC_STATE"/n*; do
  [ -e "$d" ] || continue
  i=${d##*/n}
  hc_unmount_node "$i"
done
rm -rf "$HC_RUN" "$HC_STATE"
left=$(awk -v a="$HC_RUN/" -v b="$HC_STATE/" 'index($2, a) == 1 || index($2, b) == 1' /proc/mounts)
if [ -n "$left" ] || ip netns list | grep -q '^hc-n'; then
  echo "cluster-down: left behind:" >&2
  echo "$left" >&2
  ip netns list | grep '^hc-n' >&2 || true
  exit 1
fi
echo "cluster-down: the local cluster is gone"
