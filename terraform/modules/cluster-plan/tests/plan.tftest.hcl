# terraform test: the cluster plan's rules, offline (the module uses no provider).

variables {
  admin_cidrs = ["203.0.113.0/24"]
}

run "default_cluster" {
  command = apply

  assert {
    condition     = length(output.nodes) == 7
    error_message = "3 managers, 2 data nodes and 2 workers by default"
  }
  assert {
    condition     = output.swarm_init == "hosting-manager-1"
    error_message = "the first manager initializes the Swarm"
  }
  assert {
    condition     = length(distinct([for n in values(output.nodes) : n.zone if n.role == "manager"])) == 3
    error_message = "three managers sit in three zones"
  }
  assert {
    condition     = output.nodes["hosting-data-1"].zone != output.nodes["hosting-data-2"].zone
    error_message = "the database primary and replica sit in different zones"
  }
  assert {
    condition     = length(distinct([for n in values(output.nodes) : n.address])) == length(output.nodes)
    error_message = "every node has its own address"
  }
  assert {
    condition     = alltrue([for n in values(output.nodes) : anytrue([for z, s in output.private_subnets : z == n.zone && cidrhost(s, 0) == cidrhost("${n.address}/${split("/", s)[1]}", 0)])])
    error_message = "every node is in its zone's private subnet"
  }
  assert {
    condition     = output.nodes["hosting-data-1"].labels["hosting.pg-primary"] == "true" && output.nodes["hosting-data-2"].labels["hosting.pg-replica"] == "true"
    error_message = "the data nodes carry the labels deploy/swarm/stack.yml places the databases by"
  }
  assert {
    condition     = length(setintersection(values(output.public_subnets), values(output.private_subnets))) == 0
    error_message = "public and private subnets are apart"
  }
}

# The rules the reference platform broke (../shared/reference/reference-platform.md): Swarm's
# gossip and overlay ports missing, the load balancer targeting a closed port, hostd's API and
# the databases open too widely.
run "port_matrix" {
  command = apply

  assert {
    condition = alltrue([for want in [["tcp", 2377, "manager"], ["tcp", 7946, "nodes"], ["udp", 7946, "nodes"], ["udp", 4789, "nodes"]] :
    anytrue([for r in output.port_matrix : r.protocol == want[0] && r.port == want[1] && r.source == "nodes" && r.destination == want[2]])])
    error_message = "Swarm's 2377/tcp, 7946/tcp+udp and 4789/udp are open between the nodes"
  }
  assert {
    condition     = alltrue([for r in output.port_matrix : contains(["admin", "nodes"], r.source) if r.port == 50051])
    error_message = "hostd's API (50051) is open only to the agents' nodes and the admin CIDRs"
  }
  assert {
    condition     = alltrue([for r in output.port_matrix : r.source == "application" && r.destination == "data" if contains([5432, 6379], r.port)])
    error_message = "PostgreSQL and Redis are reachable only from application nodes, on the data nodes"
  }
  assert {
    condition     = alltrue([for r in output.port_matrix : contains(["lb"], r.destination) if r.source == "internet"])
    error_message = "nothing but the load balancer faces the internet"
  }
  assert {
    condition = alltrue([for r in output.port_matrix :
    anytrue([for t in output.port_matrix : t.source == "lb" && t.destination == "manager" && t.port == (r.port == 80 ? 8080 : 8443)]) if r.destination == "lb"])
    error_message = "every port the load balancer takes has a target port open on the managers (HAProxy)"
  }
  assert {
    condition     = length(distinct([for r in output.port_matrix : r.name])) == length(output.port_matrix)
    error_message = "rule names are unique (the provider modules key resources by them)"
  }
}

run "firewall_rules" {
  command = apply

  assert {
    condition     = alltrue([for r in values(output.firewall_rules) : (r.source_role == null) != (r.source_cidr == null)])
    error_message = "every rule has a source role or a source CIDR, never both"
  }
  assert {
    condition     = alltrue([for r in values(output.firewall_rules) : r.source_cidr != "0.0.0.0/0" || r.destination == "lb"])
    error_message = "only the load balancer is open to anywhere"
  }
  assert {
    condition     = length([for r in values(output.firewall_rules) : r if r.name == "swarm-overlay"]) == 9
    error_message = "the overlay port: every node role from every node role (3 x 3)"
  }
  assert {
    condition     = toset([for r in values(output.firewall_rules) : r.source_role if r.name == "postgres"]) == toset(["manager", "worker"])
    error_message = "PostgreSQL from managers and workers"
  }
  assert {
    condition     = [for r in values(output.firewall_rules) : r.source_cidr if r.name == "hostd-api-admin"] == ["203.0.113.0/24"]
    error_message = "hostd's API from the admin CIDR"
  }
}

run "inventory" {
  command = apply

  assert {
    condition     = length(keys(yamldecode(output.ansible_inventory).all.children.managers.hosts)) == 3
    error_message = "the inventory lists the three managers"
  }
  assert {
    condition     = yamldecode(output.ansible_inventory).all.children.managers.hosts["hosting-manager-1"].ansible_host == output.nodes["hosting-manager-1"].address
    error_message = "inventory addresses are the plan's"
  }
  assert {
    condition     = keys(yamldecode(output.ansible_inventory).all.children) == ["data", "managers", "workers"]
    error_message = "the inventory's groups are managers, data and workers"
  }
  assert {
    condition     = yamldecode(output.ansible_inventory).all.vars.hosting_swarm_init == "hosting-manager-1"
    error_message = "the inventory names the manager that initializes the Swarm"
  }
}

run "databases_on_the_managers" {
  command = apply
  variables {
    managers   = 1
    workers    = 0
    data_nodes = 0
    zones      = ["only"]
  }

  assert {
    condition     = length(output.nodes) == 1
    error_message = "one node"
  }
  assert {
    condition     = output.nodes["hosting-manager-1"].labels["hosting.pg-primary"] == "true" && output.nodes["hosting-manager-1"].labels["hosting.pg-replica"] == "true"
    error_message = "a single manager carries both database labels (as scripts/swarm-stack.sh does on one node)"
  }
  assert {
    condition     = alltrue([for r in output.port_matrix : r.destination == "manager" if contains([5432, 6379], r.port)])
    error_message = "without data nodes the databases' ports open on the managers"
  }
  assert {
    condition     = alltrue([for r in values(output.firewall_rules) : r.destination != "data" && r.destination != "worker" && r.source_role != "worker"])
    error_message = "no rule for a role without nodes"
  }
}

run "even_managers_refused" {
  command = plan
  variables {
    managers = 2
  }
  expect_failures = [var.managers]
}

run "admin_open_to_the_world_refused" {
  command = plan
  variables {
    admin_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.admin_cidrs]
}

run "small_data_nodes_refused" {
  command = plan
  variables {
    sizes = {
      manager = { cpus = 2, memory_mb = 4096, disk_gb = 40 }
      worker  = { cpus = 2, memory_mb = 4096, disk_gb = 40 }
      data    = { cpus = 1, memory_mb = 1024, disk_gb = 40 }
    }
  }
  expect_failures = [var.sizes]
}

run "many_workers_spread" {
  command = apply
  variables {
    workers = 10
  }

  assert {
    condition     = length(distinct([for n in values(output.nodes) : n.address])) == 15
    error_message = "fifteen nodes, fifteen addresses"
  }
  assert {
    condition     = length([for n in values(output.nodes) : n if n.role == "worker" && n.zone == "a"]) == 4
    error_message = "ten workers over three zones: 4, 3, 3"
  }
}

run "flat_network" {
  command = apply
  variables {
    flat_network = true
    network_cidr = "192.168.40.0/24"
    zones        = ["pve1", "pve2", "pve3"]
    workers      = 8
  }

  assert {
    condition     = length(output.public_subnets) == 0 && alltrue([for s in values(output.private_subnets) : s == "192.168.40.0/24"])
    error_message = "a flat network has no public subnets and one subnet for every zone"
  }
  assert {
    condition     = length(distinct([for n in values(output.nodes) : n.address])) == 13
    error_message = "thirteen nodes on one subnet, thirteen addresses"
  }
  assert {
    condition     = output.nodes["hosting-worker-8"].address == "192.168.40.37" && output.nodes["hosting-manager-3"].zone == "pve3"
    error_message = "addresses counted across the zones, nodes spread over them"
  }
}
