# terraform plan -var-file=example.tfvars (copy it and put your own values in; the API token
# goes in TF_VAR_api_token).
endpoint        = "https://pve1.example.net:8006/"
proxmox_nodes   = ["pve1", "pve2", "pve3"]
template_vm_id  = 9000
template_node   = "pve1"
network_cidr    = "192.168.40.0/24"
gateway         = "192.168.40.1"
dns_servers     = ["192.168.40.1"]
ssh_public_keys = ["ssh-ed25519 AAAA... admin@example.net"]
admin_cidrs     = ["192.168.1.0/24"]
lb_cidrs        = ["192.168.40.1/32"] # the router forwarding 80/443 to the managers' 8080/8443
