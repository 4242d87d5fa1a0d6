output "nodes" {
  description = "Every node by name: role (manager, data, worker), zone, private address, size and Swarm node labels."
  value       = local.nodes
}

output "public_subnets" {
  description = "Per zone: the subnet for the load balancer and NAT (nothing else is public)."
  value       = local.public_subnets
}

output "private_subnets" {
  description = "Per zone: the subnet every node (and the databases) lives in."
  value       = local.private_subnets
}

output "port_matrix" {
  description = "What may reach what: protocol, port, source and destination roles, and why."
  value       = local.port_matrix
}

output "firewall_rules" {
  description = "The port matrix as concrete ingress rules by key: protocol, port, destination role, and a source role or CIDR (never both)."
  value       = local.firewall_rules
}

output "swarm_init" {
  description = "The manager that runs `docker swarm init`; the others join it."
  value       = local.swarm_init
}

output "ansible_inventory" {
  description = "The Ansible inventory (YAML) of these nodes: groups managers, data, workers."
  value       = local.inventory
}
