output "nodes" {
  description = "Every node: role, Proxmox host, address, VM ID."
  value       = { for k, n in module.plan.nodes : k => { role = n.role, proxmox_node = n.zone, address = n.address, vm_id = proxmox_virtual_environment_vm.node[k].vm_id } }
}

output "ansible_inventory" {
  description = "The Ansible inventory (YAML): terraform output -raw ansible_inventory > inventory.yml"
  value       = module.plan.ansible_inventory
}
