variable "endpoint" {
  description = "The Proxmox VE API, e.g. https://pve1.example.net:8006/."
  type        = string
}

variable "api_token" {
  description = "An API token (\"user@realm!name=secret\") allowed to create VMs, files and firewall rules; from TF_VAR_api_token, never a file in the repository."
  type        = string
  sensitive   = true
}

variable "insecure_tls" {
  description = "Accept the API's self-signed certificate (a fresh Proxmox install). Prefer a real certificate."
  type        = bool
  default     = false
}

variable "proxmox_nodes" {
  description = "The Proxmox hosts the VMs spread over (each one a failure domain), in order."
  type        = list(string)
}

variable "template_vm_id" {
  description = "A Debian 12 cloud-init template (docs/deployment.md: how to make one) every VM is a full clone of."
  type        = number
}

variable "template_node" {
  description = "The Proxmox host that holds the template."
  type        = string
}

variable "datastore_id" {
  description = "Where the VMs' disks go (e.g. local-lvm, a Ceph pool)."
  type        = string
  default     = "local-lvm"
}

variable "snippets_datastore_id" {
  description = "A datastore with the snippets content type enabled (cloud-init user data)."
  type        = string
  default     = "local"
}

variable "bridge" {
  description = "The bridge every VM's network device joins."
  type        = string
  default     = "vmbr0"
}

variable "vlan_id" {
  description = "The VLAN tag on the bridge; null: untagged."
  type        = number
  default     = null
}

variable "network_cidr" {
  description = "The bridge's subnet; the nodes get static addresses in it (from .10 up)."
  type        = string
}

variable "gateway" {
  description = "The subnet's gateway."
  type        = string
}

variable "dns_servers" {
  description = "DNS servers for the nodes."
  type        = list(string)
}

variable "ssh_public_keys" {
  description = "Keys Ansible (user debian) logs in with."
  type        = list(string)
}

variable "admin_cidrs" {
  description = "Where operators, CI and hostctl connect from: SSH and hostd's API are open to these only."
  type        = list(string)
}

variable "lb_cidrs" {
  description = "Where the front traffic comes from (the router or load balancer in front of HAProxy): HAProxy's 8080 and 8443 on the managers are open to these only."
  type        = list(string)
}

variable "managers" {
  description = "Swarm managers (1, 3, 5 or 7)."
  type        = number
  default     = 3
}

variable "workers" {
  description = "Swarm workers."
  type        = number
  default     = 2
}

variable "data_nodes" {
  description = "2: PostgreSQL's primary and replica on their own VMs; 0: on the managers."
  type        = number
  default     = 2
}

variable "sizes" {
  description = "vCPUs, memory (MiB) and disk (GiB) per kind of node."
  type = map(object({
    cpus      = number
    memory_mb = number
    disk_gb   = number
  }))
  default = {
    manager = { cpus = 2, memory_mb = 4096, disk_gb = 40 }
    worker  = { cpus = 2, memory_mb = 4096, disk_gb = 40 }
    data    = { cpus = 2, memory_mb = 8192, disk_gb = 100 }
  }
}
