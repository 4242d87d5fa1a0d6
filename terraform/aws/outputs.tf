output "load_balancer_dns_name" {
  description = "Point the service's DNS name here (a CNAME or an alias record)."
  value       = aws_lb.front.dns_name
}

output "nodes" {
  description = "Every node: role, zone, private address."
  value       = { for k, n in module.plan.nodes : k => { role = n.role, zone = n.zone, address = n.address, instance = aws_instance.node[k].id } }
}

output "ansible_inventory" {
  description = "The Ansible inventory (YAML): terraform output -raw ansible_inventory > ../../ansible/inventory/aws.yml"
  value       = module.plan.ansible_inventory
}
