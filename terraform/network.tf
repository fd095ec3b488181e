# The task runs in the default VPC unless told otherwise. It needs no inbound traffic at all;
# outbound it reaches AWS APIs and ECR over HTTPS, and the two databases.

data "aws_vpc" "selected" {
  default = var.vpc_id == ""
  id      = var.vpc_id == "" ? null : var.vpc_id
}

data "aws_subnets" "selected" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.selected.id]
  }
}

locals {
  subnet_ids = length(var.subnet_ids) > 0 ? var.subnet_ids : data.aws_subnets.selected.ids
}

resource "aws_security_group" "task" {
  #checkov:skip=CKV2_AWS_5:attached by the schedule's or the service's network configuration (schedule.tf), which checkov does not follow
  name        = "${var.name}-task"
  description = "The pipeline task: no inbound; HTTPS and the databases outbound"
  vpc_id      = data.aws_vpc.selected.id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.task.id
  description       = "AWS APIs (S3, SNS, Secrets Manager, ECR, CloudWatch Logs)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "databases" {
  for_each = toset([for port in var.database_ports : tostring(port)])

  security_group_id = aws_security_group.task.id
  description       = "the source and warehouse Postgres"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_ipv4         = "0.0.0.0/0" # the source is outside this VPC; its own firewall decides
}
