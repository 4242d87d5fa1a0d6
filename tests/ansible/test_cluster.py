"""What ansible/site.yml must leave on the machines it converged, checked over SSH by testinfra.

Run by tests/ansible/converge.sh:
  HOSTING_ANSIBLE_INVENTORY=INVENTORY python3 -m pytest tests/ansible/test_cluster.py \
      --hosts=ansible://all --ansible-inventory=INVENTORY
"""

import json
import os

testinfra_hosts = ["ansible://all"]

STACK = "hosting"


def is_manager(host):
    return "managers" in host.backend.get_variables().get("group_names", [])


def manager(host):
    """The first manager: the Swarm's and the stack's view, whichever host is under test."""
    first = sorted(host.backend.ansible_runner.get_hosts("managers"))[0]
    return host.get_host("ansible://" + first,
                         ansible_inventory=os.environ["HOSTING_ANSIBLE_INVENTORY"])


def test_base_packages_time_and_kernel_settings(host):
    for package in ("ca-certificates", "curl", "systemd-timesyncd", "tzdata"):
        assert host.package(package).is_installed, package
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Etc/UTC"
    assert host.service("systemd-timesyncd").is_enabled
    assert host.sysctl("net.core.somaxconn") == 4096
    assert host.sysctl("net.ipv4.ip_forward") == 1
    assert host.file("/etc/sysctl.d/60-hosting.conf").contains("net.core.somaxconn")


def test_docker_engine_runs_with_its_configuration(host):
    docker = host.service("docker")
    assert docker.is_running and docker.is_enabled
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon["log-driver"] == "json-file"
    assert daemon["log-opts"]["max-size"] == "10m"
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LoggingDriver"] == "json-file"
    assert info["Swarm"]["LocalNodeState"] == "active"


def test_every_node_is_in_one_swarm_with_its_labels(host):
    nodes = json.loads(manager(host).check_output("docker node ls -q | xargs docker node inspect"))
    by_name = {n["Description"]["Hostname"]: n for n in nodes}
    me = by_name[host.check_output("hostname")]
    assert me["Status"]["State"] == "ready"
    assert me["Spec"]["Role"] == ("manager" if is_manager(host) else "worker")
    labels = host.backend.get_variables().get("hosting_node_labels", {})
    for key, value in labels.items():
        assert me["Spec"]["Labels"].get(key) == value, (key, me["Spec"]["Labels"])


def test_the_platform_stack_runs_every_replica(host):
    if not is_manager(host):
        # A worker runs its share: at least the node exporter (global) and, labelled
        # hosting.pg-replica, the replica.
        names = host.check_output(
            "docker ps --filter label=com.docker.stack.namespace=%s "
            "--format '{{.Label \"com.docker.swarm.service.name\"}}'" % STACK).split()
        assert "%s_node-exporter" % STACK in names, names
        labels = host.backend.get_variables().get("hosting_node_labels", {})
        if labels.get("hosting.pg-replica") == "true":
            assert "%s_postgres-replica" % STACK in names, names
        return
    out = host.check_output(
        "docker service ls --filter label=com.docker.stack.namespace=%s "
        "--format '{{.Name}} {{.Replicas}}'" % STACK)
    services = dict(line.split(" ", 1) for line in out.splitlines())
    for name in ("postgres-primary", "postgres-replica", "redis", "haproxy", "prometheus",
                 "alertmanager", "node-exporter"):
        assert "%s_%s" % (STACK, name) in services, (name, services)
    for name, replicas in services.items():
        running, wanted = replicas.split()[0].split("/")
        assert running == wanted and wanted != "0", (name, replicas)
    # The replica streams from the primary (it answers as a standby).
    task = host.check_output(
        "docker ps -q --filter label=com.docker.swarm.service.name=%s_postgres-replica" % STACK)
    if task:
        assert host.check_output(
            "docker exec %s psql -U postgres -tAc 'SELECT pg_is_in_recovery()'" % task) == "t"


def test_hostd_runs_on_managers_with_its_tokens(host):
    if not is_manager(host):
        assert not host.file("/usr/local/bin/hostd").exists
        return
    hostd = host.service("hostd")
    assert hostd.is_running and hostd.is_enabled
    for token in ("/var/lib/hosting/admin.token", "/var/lib/hosting/agent.token"):
        f = host.file(token)
        assert f.exists and f.mode == 0o600, token
    address = host.backend.get_variables()["swarm_advertise_addr"]
    assert host.run("timeout 5 bash -c '</dev/tcp/%s/50051'" % address).rc == 0
    assert host.file("/etc/hosting/hostd.flags").contains("--network=hosting")


def test_hostagent_runs_everywhere_and_is_connected(host):
    agent = host.service("hostagent")
    assert agent.is_running and agent.is_enabled
    token = host.file("/etc/hosting/agent.token")
    assert token.mode == 0o600 and token.user == "root"
    m = manager(host)
    address = m.backend.get_variables()["swarm_advertise_addr"]
    nodes = json.loads(m.check_output(
        "hostctl -s %s:50051 --token-file /var/lib/hosting/admin.token -o json nodes" % address))
    me = [n for n in nodes["nodes"] if n["hostname"] == host.check_output("hostname")]
    assert me and me[0]["agent_state"] == "AGENT_STATE_CONNECTED", nodes
