#!/usr/bin/env bash
# Machines for Ansible to converge, on this one host: each is a Debian bookworm system booted by
# systemd-nspawn (systemd as PID 1, sshd, its own file system, hostname and network namespace),
# reached over SSH on a private bridge exactly as Ansible reaches a VM. Nothing of Docker or
# hosting is on them: the playbooks install it. apt on the machines goes through an
# apt-cacher-ng on the bridge (the machines have no default route).
#
#   tests/ansible/nodes.sh up [N]   N machines (default 2): hn-n1 .. hn-nN, inventory written
#   tests/ansible/nodes.sh down     stops them and removes everything made
#
# Machine i: namespace hn-n$i, address $NET.$((10+i)), root file system
# $HN_STATE/n$i/rootfs (from the hosting/node:dev image). The host is $NET.1 on bridge hn-br0;
# the proxy listens on $NET.1:3142. Written by `up`: $HN_STATE/id_ed25519 (the SSH key),
# $HN_STATE/inventory.ini. Needs root, systemd-nspawn (systemd-container), apt-cacher-ng and
# the hosting/node:dev image (scripts/images.sh node).
set -euo pipefail
# shellcheck source=../../scripts/cluster-lib.sh
source "$(dirname "$0")/../../scripts/cluster-lib.sh"   # bridge_up, bridge_down, netns_on_bridge
HN_STATE=${HOSTING_ANSIBLE_NODES_STATE:-/var/lib/hosting/ansible-nodes}
HN_BRIDGE=hn-br0
NET=${HOSTING_ANSIBLE_NODES_NET:-192.168.79}
IMAGE=${HOSTING_NODE_IMAGE:-hosting/node:dev}

log() { echo "nodes: $*"; }
die() { echo "nodes: $*" >&2; exit 1; }
addr() { echo "$NET.$((10 + $1))"; }

# The container's init: the process whose parent is node i's systemd-nspawn.
init_pid() {
  local nspawn
  nspawn=$(cat "$HN_STATE/n$1/nspawn.pid" 2>/dev/null) || return 1
  pgrep -P "$nspawn" | head -1
}

# node i's systemd-nspawn and every process under it: the machine's systemd, its services,
# dockerd and the containers that dockerd runs (their shims are reparented to the machine's
# init, which is PID 1 of its PID namespace).
node_pids() {
  local top
  top=$(cat "$HN_STATE/n$1/nspawn.pid" 2>/dev/null) || return 0
  [ -d "/proc/$top" ] || return 0
  ps -e -o pid=,ppid= | awk -v top="$top" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      keep[top] = 1; print top
      do {
        more = 0
        for (i in pids) { p = pids[i]; if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; print p; more = 1 } }
      } while (more)
    }'
}

start_proxy() {
  local d=$HN_STATE/acng
  mkdir -p "$d/conf" "$d/log" /var/cache/apt-cacher-ng
  # No remapping to other mirrors: it fetches from the host each machine's sources name (the
  # mirror the base image came from, which this host reaches).
  cat >"$d/conf/acng.conf" <<EOF
CacheDir: /var/cache/apt-cacher-ng
LogDir: $d/log
SupportDir: /usr/lib/apt-cacher-ng
Port: 3142
BindAddress: $NET.1
PidFile: $d/acng.pid
ExThreshold: 4
EOF
  chown -R apt-cacher-ng: "$d/log" /var/cache/apt-cacher-ng 2>/dev/null || true
  apt-cacher-ng -c "$d/conf" ForeGround=0 >>"$d/log/start.log" 2>&1
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/$NET.1/3142") 2>/dev/null && return 0
    sleep 0.1
  done
  die "apt-cacher-ng did not listen on $NET.1:3142 ($d/log)"
}

up() {
  local n=${1:-2} i rootfs ns
  if [ "$n" -lt 1 ] || [ "$n" -gt 9 ]; then die "N must be 1..9, not $n"; fi
  [ -e "$HN_STATE/nodes" ] && die "machines are up ($HN_STATE/nodes); run '$0 down' first"
  for tool in systemd-nspawn apt-cacher-ng ssh ssh-keygen ip iptables; do
    command -v "$tool" >/dev/null || die "$tool is missing; run scripts/install-deps.sh"
  done
  docker image inspect "$IMAGE" >/dev/null 2>&1 || die "no image $IMAGE; run scripts/images.sh node"
  mkdir -p "$HN_STATE"
  echo "$n" >"$HN_STATE/nodes"
  trap 'echo "nodes: up failed; $0 down removes what was made" >&2' ERR

  bridge_up "$HN_BRIDGE" "$NET.1"
  start_proxy
  ssh-keygen -q -t ed25519 -N '' -C hosting-ansible-test -f "$HN_STATE/id_ed25519"

  local cid
  cid=$(docker create "$IMAGE")
  mkdir -p "$HN_STATE/image"
  docker export "$cid" | tar -C "$HN_STATE/image" -x
  docker rm "$cid" >/dev/null
  for i in $(seq 1 "$n"); do
    rootfs=$HN_STATE/n$i/rootfs
    ns=hn-n$i
    mkdir -p "$rootfs"
    cp -a "$HN_STATE/image/." "$rootfs/"
    echo "hn-n$i" >"$rootfs/etc/hostname"
    printf '127.0.0.1 localhost\n%s hn-n%s\n' "$(addr "$i")" "$i" >"$rootfs/etc/hosts"
    : >"$rootfs/etc/resolv.conf"
    install -d -m 700 "$rootfs/root/.ssh"
    install -m 600 "$HN_STATE/id_ed25519.pub" "$rootfs/root/.ssh/authorized_keys"
    chroot "$rootfs" ssh-keygen -A >/dev/null
    netns_on_bridge "$ns" "hn-v$i" "$HN_BRIDGE" "$(addr "$i")"
    # All capabilities, no seccomp filter and every character device: the dockerd the playbooks
    # install runs containers inside. /proc/sys/net writable (per namespace, like a VM's).
    SYSTEMD_NSPAWN_API_VFS_WRITABLE=network SYSTEMD_SECCOMP=0 setsid systemd-nspawn -q -D "$rootfs" -M "hn-n$i" --boot --register=no \
      --keep-unit --network-namespace-path="/run/netns/$ns" --capability=all \
      --property="DeviceAllow=char-* rwm" --console=passive \
      >"$HN_STATE/n$i/console.log" 2>&1 </dev/null &
    echo $! >"$HN_STATE/n$i/nspawn.pid"
  done
  for i in $(seq 1 "$n"); do
    local pid="" ok=0
    for _ in $(seq 1 300); do
      pid=$(init_pid "$i" || true)
      [ -n "$pid" ] && [ -e "/proc/$pid/root/run/systemd/private" ] && break
      sleep 0.1
    done
    [ -n "$pid" ] || die "machine hn-n$i did not boot ($HN_STATE/n$i/console.log)"
    # nspawn mounts the cgroup v1 controllers read-only; dockerd inside needs to make its
    # containers' groups (under the cgroup-parent its daemon.json names).
    # shellcheck disable=SC2016  # expanded by the machine's shell
    nsenter -t "$pid" -m sh -c 'mount -o remount,rw /sys/fs/cgroup &&
      for c in /sys/fs/cgroup/*; do
        [ -L "$c" ] || mount -o remount,bind,rw "$c"
      done'
    for _ in $(seq 1 300); do
      if ssh_node "$i" true 2>/dev/null; then ok=1; break; fi
      sleep 0.2
    done
    [ "$ok" = 1 ] || die "no SSH on hn-n$i ($(addr "$i")) within 60 s ($HN_STATE/n$i/console.log)"
    log "hn-n$i up at $(addr "$i")"
  done
  rm -rf "$HN_STATE/image"
  {
    echo "# Written by tests/ansible/nodes.sh: machines on this host, reached over SSH."
    echo "[all:vars]"
    echo "ansible_user=root"
    echo "ansible_ssh_private_key_file=$HN_STATE/id_ed25519"
    echo "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"
    echo "ansible_python_interpreter=/usr/bin/python3"
    echo "base_apt_proxy=http://$NET.1:3142"
    echo
    echo "[managers]"
    echo "hn-n1 ansible_host=$(addr 1) swarm_advertise_addr=$(addr 1)"
    echo
    echo "[workers]"
    for i in $(seq 2 "$n"); do
      echo "hn-n$i ansible_host=$(addr "$i") swarm_advertise_addr=$(addr "$i")"
    done
  } >"$HN_STATE/inventory.ini"
  log "inventory: $HN_STATE/inventory.ini"
}

ssh_node() {
  local i=$1
  shift
  ssh -q -i "$HN_STATE/id_ed25519" -o BatchMode=yes -o ConnectTimeout=2 \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "root@$(addr "$i")" "$@"
}

down() {
  local n i pids rootfs
  n=$(cat "$HN_STATE/nodes" 2>/dev/null || echo 9)
  for i in $(seq 1 "$n"); do
    rootfs=$HN_STATE/n$i/rootfs
    [ -d "$rootfs" ] || continue
    # A clean halt first (dockerd stops its containers), then whatever is left.
    pid=$(init_pid "$i" || true)
    if [ -n "$pid" ]; then kill -RTMIN+4 "$pid" 2>/dev/null || true; fi
    for _ in $(seq 1 100); do
      [ -z "$(node_pids "$i")" ] && break
      sleep 0.2
    done
    pids=$(node_pids "$i")
    # shellcheck disable=SC2086  # one word per pid
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; fi
    kill -KILL "$(cat "$HN_STATE/n$i/nspawn.pid" 2>/dev/null)" 2>/dev/null || true
    awk -v a="$rootfs/" 'index($2, a) == 1 { print $2 }' /proc/mounts | sort -r |
      while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
    find /sys/fs/cgroup -depth -type d \( -path "*/hn-n$i" -o -path "*/hn-n$i/*" \) \
      -exec rmdir {} + 2>/dev/null || true
    ip netns del "hn-n$i" 2>/dev/null || true
  done
  if [ -f "$HN_STATE/acng/acng.pid" ]; then
    kill "$(cat "$HN_STATE/acng/acng.pid")" 2>/dev/null || true
  fi
  pkill -f "apt-cacher-ng -c $HN_STATE/acng/conf" 2>/dev/null || true
  bridge_down "$HN_BRIDGE"
  rm -rf "$HN_STATE"
  log "removed"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  ssh) shift; ssh_node "$@" ;;
  *) sed -n 2,16p "$0"; exit 2 ;;
esac
