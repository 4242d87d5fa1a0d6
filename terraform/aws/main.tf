# hosting on AWS: a VPC over three zones (public subnets for the load balancer and the NAT
# gateways, private ones for every node), security groups that open exactly the cluster plan's
# port matrix (../modules/cluster-plan), an application load balancer in front of HAProxy on the
# managers, and the nodes with Docker installed by cloud-init. Ansible (ansible/) then builds
# the Swarm and puts hosting on it, from the inventory this outputs.

module "plan" {
  source       = "../modules/cluster-plan"
  name         = var.name
  managers     = var.managers
  workers      = var.workers
  data_nodes   = var.data_nodes
  sizes        = var.sizes
  network_cidr = var.network_cidr
  zones        = var.zones
  admin_cidrs  = var.admin_cidrs
}

locals {
  # A security group per role; the load balancer's too.
  groups = toset(["manager", "worker", "data", "lb"])
}

resource "aws_vpc" "main" {
  cidr_block           = var.network_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

resource "aws_subnet" "public" {
  for_each          = module.plan.public_subnets
  vpc_id            = aws_vpc.main.id
  cidr_block        = each.value
  availability_zone = each.key
  tags              = { Name = "${var.name}-public-${each.key}" }
}

resource "aws_subnet" "private" {
  for_each          = module.plan.private_subnets
  vpc_id            = aws_vpc.main.id
  cidr_block        = each.value
  availability_zone = each.key
  tags              = { Name = "${var.name}-private-${each.key}" }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}

resource "aws_route_table_association" "public" {
  for_each       = aws_subnet.public
  subnet_id      = each.value.id
  route_table_id = aws_route_table.public.id
}

# One NAT gateway per zone: the nodes reach Debian's archive and registries without a public
# address, and a zone's outage does not cut the others off.
resource "aws_eip" "nat" {
  for_each = aws_subnet.public
  domain   = "vpc"
}

resource "aws_nat_gateway" "main" {
  for_each      = aws_subnet.public
  allocation_id = aws_eip.nat[each.key].id
  subnet_id     = each.value.id
  depends_on    = [aws_internet_gateway.main]
}

resource "aws_route_table" "private" {
  for_each = aws_subnet.private
  vpc_id   = aws_vpc.main.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.main[each.key].id
  }
}

resource "aws_route_table_association" "private" {
  for_each       = aws_subnet.private
  subnet_id      = each.value.id
  route_table_id = aws_route_table.private[each.key].id
}

resource "aws_security_group" "role" {
  for_each    = local.groups
  name        = "${var.name}-${each.key}"
  description = "hosting ${each.key}: ingress from the cluster plan's port matrix only"
  vpc_id      = aws_vpc.main.id
}

# Exactly the cluster plan's firewall rules (its tests check them): a security group as the
# source for a role, a CIDR for the admin ranges and the load balancer's public listeners.
resource "aws_vpc_security_group_ingress_rule" "matrix" {
  for_each                     = module.plan.firewall_rules
  security_group_id            = aws_security_group.role[each.value.destination].id
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = each.value.source_role == null ? null : aws_security_group.role[each.value.source_role].id
  cidr_ipv4                    = each.value.source_cidr
  description                  = each.value.why
}

# Out: nodes to the NAT (packages, images, time), the load balancer to its targets.
resource "aws_vpc_security_group_egress_rule" "all" {
  for_each          = aws_security_group.role
  security_group_id = each.value.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  description       = "outbound"
}

resource "aws_instance" "node" {
  for_each                    = module.plan.nodes
  ami                         = var.ami_id
  instance_type               = var.instance_types[each.value.role]
  subnet_id                   = aws_subnet.private[each.value.zone].id
  private_ip                  = each.value.address
  associate_public_ip_address = false
  vpc_security_group_ids      = [aws_security_group.role[each.value.role].id]
  key_name                    = var.ssh_key_name
  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    hostname = each.key
  })
  root_block_device {
    volume_size = each.value.size.disk_gb
    volume_type = "gp3"
    encrypted   = true
  }
  metadata_options {
    http_tokens = "required"
  }
  tags = { Name = each.key, "hosting:role" = each.value.role }
}

resource "aws_lb" "front" {
  name                       = "${var.name}-front"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = [for s in aws_subnet.public : s.id]
  security_groups            = [aws_security_group.role["lb"].id]
  drop_invalid_header_fields = true
}

# HAProxy on every manager (the Swarm stack's global service), plain HTTP on 8080.
resource "aws_lb_target_group" "haproxy_http" {
  name     = "${var.name}-haproxy-http"
  port     = 8080
  protocol = "HTTP"
  vpc_id   = aws_vpc.main.id
  health_check {
    path    = "/health"
    port    = "traffic-port"
    matcher = "200"
  }
}

resource "aws_lb_target_group_attachment" "haproxy_http" {
  for_each         = { for k, n in module.plan.nodes : k => n if n.role == "manager" }
  target_group_arn = aws_lb_target_group.haproxy_http.arn
  target_id        = aws_instance.node[each.key].id
  port             = 8080
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.front.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.haproxy_http.arn
  }
}

# HTTPS, when a certificate is given: to HAProxy's TLS listener on 8443, so the hop inside the
# VPC is encrypted too.
resource "aws_lb_target_group" "haproxy_https" {
  count    = var.certificate_arn == "" ? 0 : 1
  name     = "${var.name}-haproxy-https"
  port     = 8443
  protocol = "HTTPS"
  vpc_id   = aws_vpc.main.id
  health_check {
    path     = "/health"
    port     = "traffic-port"
    protocol = "HTTPS"
    matcher  = "200"
  }
}

resource "aws_lb_target_group_attachment" "haproxy_https" {
  for_each         = var.certificate_arn == "" ? {} : { for k, n in module.plan.nodes : k => n if n.role == "manager" }
  target_group_arn = aws_lb_target_group.haproxy_https[0].arn
  target_id        = aws_instance.node[each.key].id
  port             = 8443
}

resource "aws_lb_listener" "https" {
  count             = var.certificate_arn == "" ? 0 : 1
  load_balancer_arn = aws_lb.front.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.haproxy_https[0].arn
  }
}
