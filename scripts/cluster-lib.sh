# shellcheck shell=bash
# Shared by cluster-up.sh, cluster-down.sh and cluster-node.sh: where a local cluster's nodes
# live and how each one's containerd and dockerd run. Sourced, not run.

# Data roots (images, volumes, Swarm state) and the short runtime paths (sockets, pidfiles:
# unix socket paths are limited to 108 bytes).
HC_STATE=${HOSTING_CLUSTER_STATE:-/var/lib/hosting/cluster}
HC_RUN=/run/hc
HC_BRIDGE=hc-br0
# The bridge's /24: the host is .1, node i is .(10+i). Pick another if it collides with a
# network of yours.
NET=${HOSTING_CLUSTER_NET:-192.168.77}

hc_addr() { echo "$NET.$((10 + $1))"; }
hc_sock() { echo "unix://$HC_RUN/n$1/docker.sock"; }
hc_docker() { local i=$1; shift; docker -H "$(hc_sock "$i")" "$@"; }
hc_ns() { echo "hc-n$1"; }

# A private bridge at ADDR/24 (the host's address on it), and the host rules it needs: Docker
# sets the FORWARD policy to DROP and bridged frames pass through iptables (br_netfilter), so
# without the first the machines on it cannot talk; the second lets them reach the host (its
# published ports, hostd, a proxy on ADDR).
bridge_up() {
  local bridge=$1 addr=$2
  ip link add "$bridge" type bridge
  ip addr add "$addr/24" dev "$bridge"
  ip link set "$bridge" up
  iptables -I FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
  iptables -I INPUT -i "$bridge" -j ACCEPT
}

# Removes bridge_up's bridge and rules (whatever of them exists).
bridge_down() {
  local bridge=$1
  ip link del "$bridge" 2>/dev/null || true
  while iptables -D FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null; do :; done
  while iptables -D INPUT -i "$bridge" -j ACCEPT 2>/dev/null; do :; done
}

# Network namespace NS with lo and eth0 (a veth named VETH on BRIDGE) at ADDR/24, and no
# default route.
netns_on_bridge() {
  local ns=$1 veth=$2 bridge=$3 addr=$4
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" master "$bridge" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
}

# Namespace hc-n$i of node i.
hc_make_netns() { netns_on_bridge "$(hc_ns "$1")" "hc-v$1" "$HC_BRIDGE" "$(hc_addr "$1")"; }

# containerd and dockerd of node i, inside its namespace. Each has its own containerd: with a
# shared one, containers of one node would run in another's network namespace. `ip netns exec`
# would remount /sys and hide the cgroup v1 mounts dockerd needs, so nsenter --net it is; the
# UTS namespace gives the node its own hostname (Swarm names nodes by it).
hc_start_node() {
  local i=$1 d r ns
  d=$HC_STATE/n$i
  r=$HC_RUN/n$i
  ns=/run/netns/$(hc_ns "$i")
  mkdir -p "$d/containerd" "$d/docker" "$r"
  cat > "$d/containerd.toml" <<EOF
version = 2
root = "$d/containerd"
state = "$r/ctd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$r/ctd.sock"
[ttrpc]
  address = "$r/ctd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
  nsenter --net="$ns" -- setsid containerd --config "$d/containerd.toml" \
    >>"$d/containerd.log" 2>&1 </dev/null &
  echo $! > "$r/containerd.pid"
  for _ in $(seq 1 100); do [ -S "$r/ctd.sock" ] && break; sleep 0.1; done
  nsenter --net="$ns" -- unshare --uts -- sh -c "hostname hc-n$i && exec setsid dockerd \
      --data-root '$d/docker' --exec-root '$r/x' --pidfile '$r/docker.pid' \
      -H '$(hc_sock "$i")' --containerd '$r/ctd.sock' --cgroup-parent /hc-n$i \
      --log-driver json-file --log-opt max-size=10m" \
    >>"$d/dockerd.log" 2>&1 </dev/null &
}

hc_wait_engine() {
  local i=$1
  for _ in $(seq 1 120); do
    hc_docker "$i" version >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "cluster: the engine of node $i did not answer within 30 s; last log lines:" >&2
  tail -20 "$HC_STATE/n$i/dockerd.log" >&2
  return 1
}

# Kills every process of node i (dockerd, containerd, shims, containers, agents started in its
# namespace) with `signal`, and waits for them to be gone.
hc_node_pids() {
  # The namespace's own processes, and the containers' (their own namespaces, in the node's
  # cgroup parent).
  { ip netns pids "$(hc_ns "$1")" 2>/dev/null || true
    find /sys/fs/cgroup -path "*/hc-n$1/*" -name cgroup.procs -exec cat {} + 2>/dev/null || true
  } | sort -u
}

hc_kill_node() {
  local i=$1 signal=${2:-TERM} pids
  pids=$(hc_node_pids "$i")
  # shellcheck disable=SC2086  # one word per pid
  if [ -n "$pids" ]; then kill "-$signal" $pids 2>/dev/null || true; fi
  for _ in $(seq 1 150); do
    pids=$(hc_node_pids "$i")
    [ -z "$pids" ] && break
    sleep 0.1
  done
  pids=$(hc_node_pids "$i")
  # shellcheck disable=SC2086  # one word per pid
  if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; fi
  for _ in $(seq 1 50); do
    [ -z "$(hc_node_pids "$i")" ] && return 0
    sleep 0.1
  done
  echo "cluster: processes of node $i survived SIGKILL: $(hc_node_pids "$i" | tr '\n' ' ')" >&2
  return 1
}

# Removes node i's (empty) cgroups.
hc_remove_cgroups() {
  find /sys/fs/cgroup -depth -type d \( -path "*/hc-n$1" -o -path "*/hc-n$1/*" \) \
    -exec rmdir {} + 2>/dev/null || true
}

# Unmounts whatever is left under node i's directories (overlay layers, netns files, shm).
hc_unmount_node() {
  local i=$1
  awk -v a="$HC_RUN/n$i/" -v b="$HC_STATE/n$i/" \
      'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/mounts | sort -r |
    while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
}
