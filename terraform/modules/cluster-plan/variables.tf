variable "name" {
  description = "Prefix of every node's name (hosting-manager-1, ...)."
  type        = string
  default     = "hosting"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "name: lower-case letters, digits and '-', starting with a letter, at most 31 characters."
  }
}

variable "managers" {
  description = "Swarm managers (they run hostd, HAProxy and monitoring). Raft needs an odd count: 1, 3, 5 or 7."
  type        = number
  default     = 3
  validation {
    condition     = contains([1, 3, 5, 7], var.managers)
    error_message = "managers: 1, 3, 5 or 7 (an even count tolerates no more failures than the odd count below it)."
  }
}

variable "workers" {
  description = "Swarm workers (they run the hosted services)."
  type        = number
  default     = 2
  validation {
    condition     = var.workers >= 0 && var.workers <= 100 && floor(var.workers) == var.workers
    error_message = "workers: a whole number from 0 to 100."
  }
}

variable "data_nodes" {
  description = "Nodes for PostgreSQL (primary and replica) and Redis: 2 (primary and replica on different nodes), or 0 to run them on the managers."
  type        = number
  default     = 2
  validation {
    condition     = contains([0, 2], var.data_nodes)
    error_message = "data_nodes: 2 (a primary and a replica on different nodes) or 0 (on the managers)."
  }
}

variable "sizes" {
  description = "vCPUs, memory (MiB) and disk (GiB) of each kind of node."
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
  validation {
    condition     = alltrue([for k in ["manager", "worker", "data"] : contains(keys(var.sizes), k)])
    error_message = "sizes: give manager, worker and data."
  }
  validation {
    condition     = alltrue([for k, s in var.sizes : s.cpus >= 1 && s.memory_mb >= 1024 && s.disk_gb >= 20])
    error_message = "sizes: at least 1 vCPU, 1024 MiB and 20 GiB each (dockerd, the images and the logs need that)."
  }
  validation {
    condition     = !contains(keys(var.sizes), "data") || var.sizes["data"].memory_mb >= 2048
    error_message = "sizes.data: at least 2048 MiB (PostgreSQL's shared buffers and Redis's 256 MiB)."
  }
}

variable "network_cidr" {
  description = "The cluster's address space (an AWS VPC, a Proxmox bridge's subnet); split into one public and one private subnet per zone."
  type        = string
  default     = "10.40.0.0/16"
  validation {
    condition     = can(cidrhost(var.network_cidr, 0)) && tonumber(split("/", var.network_cidr)[1]) <= (var.flat_network ? 24 : 20)
    error_message = "network_cidr: an IPv4 CIDR of /20 or larger (a public and a private subnet per zone are carved from it), /24 or larger with flat_network."
  }
}

variable "zones" {
  description = "Availability zones (AWS) or failure domains (Proxmox hosts); nodes are spread over them in order."
  type        = list(string)
  default     = ["a", "b", "c"]
  validation {
    condition     = length(var.zones) >= 1 && length(var.zones) <= 6 && length(distinct(var.zones)) == length(var.zones)
    error_message = "zones: 1 to 6 distinct names."
  }
}

variable "admin_cidrs" {
  description = "Where operators, CI and hostctl connect from: SSH (22) and hostd's API (50051) open to these only."
  type        = list(string)
  validation {
    condition     = length(var.admin_cidrs) > 0 && alltrue([for c in var.admin_cidrs : can(cidrhost(c, 0))])
    error_message = "admin_cidrs: one or more CIDRs (e.g. the CI runners' and the office's)."
  }
  validation {
    condition     = !contains(var.admin_cidrs, "0.0.0.0/0")
    error_message = "admin_cidrs: not 0.0.0.0/0: hostd's API and SSH must not be open to the internet."
  }
}

variable "flat_network" {
  description = "One subnet for every node (a Proxmox bridge): network_cidr itself, no public subnets, addresses numbered across zones. false: a public and a private subnet per zone (a cloud VPC)."
  type        = bool
  default     = false
}
