variable "region" {
  description = "AWS region, e.g. eu-central-1."
  type        = string
}

variable "zones" {
  description = "Three availability zones of the region (nodes, subnets and the load balancer spread over them)."
  type        = list(string)
  validation {
    condition     = length(var.zones) == 3 && length(distinct(var.zones)) == 3
    error_message = "zones: three distinct availability zones (e.g. [\"eu-central-1a\", \"eu-central-1b\", \"eu-central-1c\"])."
  }
}

variable "name" {
  description = "Prefix of every resource's name."
  type        = string
  default     = "hosting"
}

variable "managers" {
  description = "Swarm managers (1, 3, 5 or 7): hostd, HAProxy, monitoring."
  type        = number
  default     = 3
}

variable "workers" {
  description = "Swarm workers: the hosted services."
  type        = number
  default     = 2
}

variable "data_nodes" {
  description = "2: PostgreSQL's primary and replica (and Redis) on their own nodes; 0: on the managers."
  type        = number
  default     = 2
}

variable "instance_types" {
  description = "EC2 instance type per kind of node."
  type        = map(string)
  default = {
    manager = "t3.medium"
    worker  = "t3.medium"
    data    = "r6i.large"
  }
}

variable "sizes" {
  description = "vCPUs, memory (MiB) and root disk (GiB) per kind of node: the disk sizes the volumes; vCPUs and memory document what the instance types must give (checked by the cluster plan)."
  type = map(object({
    cpus      = number
    memory_mb = number
    disk_gb   = number
  }))
  default = {
    manager = { cpus = 2, memory_mb = 4096, disk_gb = 40 }
    worker  = { cpus = 2, memory_mb = 4096, disk_gb = 40 }
    data    = { cpus = 2, memory_mb = 16384, disk_gb = 200 }
  }
}

variable "network_cidr" {
  description = "The VPC's CIDR."
  type        = string
  default     = "10.40.0.0/16"
}

variable "admin_cidrs" {
  description = "Where operators, CI and hostctl connect from (a VPN's or bastion's range): SSH and hostd's API are open to these only."
  type        = list(string)
}

variable "ami_id" {
  description = "A Debian 12 (bookworm) AMI of the region (Debian's official images: https://wiki.debian.org/Cloud/AmazonEC2Image)."
  type        = string
}

variable "ssh_key_name" {
  description = "The EC2 key pair Ansible logs in with (user admin on Debian's images)."
  type        = string
}

variable "certificate_arn" {
  description = "An ACM certificate for the load balancer's HTTPS listener; empty: HTTP only."
  type        = string
  default     = ""
}
