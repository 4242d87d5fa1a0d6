# The cluster hosting needs, computed without any provider: which nodes exist (role, zone,
# address, size, Swarm labels), the address plan, which ports are open between what (the port
# matrix the AWS and Proxmox modules turn into security groups and firewall rules), and the
# Ansible inventory. Everything here is checked by `terraform test` (tests/) on any machine.

terraform {
  required_version = ">= 1.9" # validations that read other variables
}

locals {
  zone_count = length(var.zones)
  # Subnets four bits longer than the network: 16 of them; public i, private 8 + i.
  # On a flat network every zone's "private subnet" is the network itself.
  public_subnets  = var.flat_network ? {} : { for i, z in var.zones : z => cidrsubnet(var.network_cidr, 4, i) }
  private_subnets = { for i, z in var.zones : z => var.flat_network ? var.network_cidr : cidrsubnet(var.network_cidr, 4, 8 + i) }

  # Nodes spread over the zones in order. Host numbers within a zone's private subnet: managers
  # from 10, data nodes from 20, workers from 30, so a node's address never depends on how many
  # of another kind there are (on a flat network, counted across the zones).
  kinds = [
    { role = "manager", count = var.managers, first_host = 10 },
    { role = "data", count = var.data_nodes, first_host = 20 },
    { role = "worker", count = var.workers, first_host = 30 },
  ]
  primary = { "hosting.pg-primary" = "true" }
  replica = { "hosting.pg-replica" = "true" }
  node_list = flatten([for k in local.kinds : [for i in range(k.count) : {
    name    = format("%s-%s-%d", var.name, k.role, i + 1)
    role    = k.role
    zone    = var.zones[i % local.zone_count]
    address = cidrhost(local.private_subnets[var.zones[i % local.zone_count]], k.first_host + (var.flat_network ? i : floor(i / local.zone_count)))
    size    = var.sizes[k.role]
    # The databases' placement labels: on the data nodes (primary, replica), or without them on
    # the first two managers (on one manager, both).
    labels = (k.role == "data" ? (i == 0 ? local.primary : local.replica) :
      k.role == "manager" && var.data_nodes == 0 ? merge(i == 0 ? local.primary : {}, i == min(1, var.managers - 1) ? local.replica : {}) :
    {})
  }]])
  nodes      = { for n in local.node_list : n.name => n }
  swarm_init = local.node_list[0].name

  # Who may reach what. Sources and destinations are roles ("nodes" is every node, "lb" the
  # load balancer in front of HAProxy, "admin" var.admin_cidrs, "internet" anywhere).
  # Application nodes (where hosted services and their tasks run) are managers and workers.
  port_matrix = [
    { name = "http-public", protocol = "tcp", port = 80, source = "internet", destination = "lb", why = "clients to the load balancer" },
    { name = "https-public", protocol = "tcp", port = 443, source = "internet", destination = "lb", why = "clients to the load balancer" },
    { name = "haproxy-http", protocol = "tcp", port = 8080, source = "lb", destination = "manager", why = "the load balancer to HAProxy (global on the managers)" },
    { name = "haproxy-https", protocol = "tcp", port = 8443, source = "lb", destination = "manager", why = "the load balancer to HAProxy's TLS listener" },
    { name = "swarm-management", protocol = "tcp", port = 2377, source = "nodes", destination = "manager", why = "Swarm's cluster management (joins, Raft)" },
    { name = "swarm-gossip-tcp", protocol = "tcp", port = 7946, source = "nodes", destination = "nodes", why = "Swarm's node discovery (gossip)" },
    { name = "swarm-gossip-udp", protocol = "udp", port = 7946, source = "nodes", destination = "nodes", why = "Swarm's node discovery (gossip)" },
    { name = "swarm-overlay", protocol = "udp", port = 4789, source = "nodes", destination = "nodes", why = "the overlay network's VXLAN traffic" },
    { name = "hostd-api-agents", protocol = "tcp", port = 50051, source = "nodes", destination = "manager", why = "hostagent's stream to hostd" },
    { name = "hostd-api-admin", protocol = "tcp", port = 50051, source = "admin", destination = "manager", why = "hostctl and CI to hostd" },
    { name = "postgres", protocol = "tcp", port = 5432, source = "application", destination = local.database_role, why = "appsvc to PostgreSQL (primary and replica)" },
    { name = "redis", protocol = "tcp", port = 6379, source = "application", destination = local.database_role, why = "appsvc to Redis" },
    { name = "ssh", protocol = "tcp", port = 22, source = "admin", destination = "nodes", why = "Ansible and operators" },
    { name = "node-exporter", protocol = "tcp", port = 9100, source = "manager", destination = "nodes", why = "Prometheus (on a manager) scrapes every node" },
    { name = "prometheus", protocol = "tcp", port = 9090, source = "admin", destination = "manager", why = "operators to Prometheus" },
  ]
  database_role = var.data_nodes > 0 ? "data" : "manager"

  # The matrix as concrete rules, one per (rule, destination role, source): a source is a role
  # ("nodes" and "application" stand for the roles that have nodes), one of var.admin_cidrs, or
  # anywhere. Keyed "<rule>/<destination>/<source>"; what security groups and firewalls are
  # made from.
  roles_with_nodes = [for k in local.kinds : k.role if k.count > 0]
  role_groups = {
    manager     = ["manager"]
    worker      = var.workers > 0 ? ["worker"] : []
    data        = var.data_nodes > 0 ? ["data"] : []
    lb          = ["lb"]
    nodes       = local.roles_with_nodes
    application = [for r in ["manager", "worker"] : r if contains(local.roles_with_nodes, r)]
  }
  firewall_rules = { for x in flatten([for r in local.port_matrix : [
    for dst in local.role_groups[r.destination] : concat(
      [for src in lookup(local.role_groups, r.source, []) : {
        key         = "${r.name}/${dst}/from-${src}", name = r.name, protocol = r.protocol, port = r.port,
        destination = dst, source_role = src, source_cidr = null, why = r.why
      }],
      [for i, c in(r.source == "admin" ? var.admin_cidrs : []) : {
        key         = "${r.name}/${dst}/admin-${i}", name = r.name, protocol = r.protocol, port = r.port,
        destination = dst, source_role = null, source_cidr = c, why = r.why
      }],
      [for c in(r.source == "internet" ? ["0.0.0.0/0"] : []) : {
        key         = "${r.name}/${dst}/internet", name = r.name, protocol = r.protocol, port = r.port,
        destination = dst, source_role = null, source_cidr = c, why = r.why
      }],
    )
  ]]) : x.key => x }

  inventory = yamlencode({
    all = {
      vars = {
        hosting_network_cidr = var.network_cidr
        hosting_swarm_init   = local.swarm_init
      }
      children = {
        for role, group in { manager = "managers", data = "data", worker = "workers" } : group => {
          hosts = {
            for n in values(local.nodes) : n.name => {
              ansible_host        = n.address
              hosting_zone        = n.zone
              hosting_node_labels = n.labels
            } if n.role == role
          }
        }
      }
    }
  })
}
