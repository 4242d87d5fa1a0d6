# hosting on Proxmox VE: the cluster plan's nodes (../modules/cluster-plan, on one flat subnet,
# spread over the Proxmox hosts) as full clones of a Debian 12 cloud-init template, each with a
# static address, Docker installed by cloud-init, and Proxmox's firewall dropping every inbound
# connection the plan's port matrix does not name. Ansible (ansible/) then builds the Swarm and
# puts hosting on it, from the inventory this outputs.

module "plan" {
  source       = "../modules/cluster-plan"
  managers     = var.managers
  workers      = var.workers
  data_nodes   = var.data_nodes
  sizes        = var.sizes
  network_cidr = var.network_cidr
  zones        = var.proxmox_nodes
  admin_cidrs  = var.admin_cidrs
  flat_network = true
}

locals {
  prefix = split("/", var.network_cidr)[1]
  # A firewall rule's source as Proxmox takes it: the addresses of a role's nodes, the
  # front-traffic CIDRs for the load balancer's rules, or the plan's CIDR.
  addresses = { for role in ["manager", "worker", "data"] : role => [for n in values(module.plan.nodes) : n.address if n.role == role] }
  rules_by_role = { for role in ["manager", "worker", "data"] : role => [
    for r in values(module.plan.firewall_rules) : merge(r, {
      source = r.source_cidr != null ? r.source_cidr : r.source_role == "lb" ? join(",", var.lb_cidrs) : join(",", local.addresses[r.source_role])
    }) if r.destination == role
  ] }
}

resource "proxmox_virtual_environment_file" "user_data" {
  for_each     = module.plan.nodes
  content_type = "snippets"
  datastore_id = var.snippets_datastore_id
  node_name    = each.value.zone
  source_raw {
    file_name = "${each.key}-user-data.yaml"
    data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
      hostname        = each.key
      ssh_public_keys = var.ssh_public_keys
    })
  }
}

resource "proxmox_virtual_environment_vm" "node" {
  for_each  = module.plan.nodes
  name      = each.key
  node_name = each.value.zone
  tags      = ["hosting", each.value.role]
  on_boot   = true

  clone {
    vm_id     = var.template_vm_id
    node_name = var.template_node
    full      = true
  }
  agent {
    enabled = true
  }
  cpu {
    cores = each.value.size.cpus
    type  = "host"
  }
  memory {
    dedicated = each.value.size.memory_mb
  }
  disk {
    datastore_id = var.datastore_id
    interface    = "scsi0"
    size         = each.value.size.disk_gb
  }
  network_device {
    bridge   = var.bridge
    vlan_id  = var.vlan_id
    firewall = true
  }
  operating_system {
    type = "l26"
  }
  initialization {
    ip_config {
      ipv4 {
        address = "${each.value.address}/${local.prefix}"
        gateway = var.gateway
      }
    }
    dns {
      servers = var.dns_servers
    }
    user_data_file_id = proxmox_virtual_environment_file.user_data[each.key].id
  }
}

# Inbound: only what the plan's port matrix names; outbound free (packages, images).
resource "proxmox_virtual_environment_firewall_options" "node" {
  for_each      = module.plan.nodes
  node_name     = each.value.zone
  vm_id         = proxmox_virtual_environment_vm.node[each.key].vm_id
  enabled       = true
  input_policy  = "DROP"
  output_policy = "ACCEPT"
  dhcp          = false
}

resource "proxmox_virtual_environment_firewall_rules" "node" {
  for_each   = module.plan.nodes
  node_name  = each.value.zone
  vm_id      = proxmox_virtual_environment_vm.node[each.key].vm_id
  depends_on = [proxmox_virtual_environment_firewall_options.node]

  dynamic "rule" {
    for_each = local.rules_by_role[each.value.role]
    content {
      type    = "in"
      action  = "ACCEPT"
      proto   = rule.value.protocol
      dport   = tostring(rule.value.port)
      source  = rule.value.source
      comment = "${rule.value.key}: ${rule.value.why}"
    }
  }
}
