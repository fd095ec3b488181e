# Optional (var.payments_api, off by default): the payments API as an always-on ECS service,
# the same image with `api` as its command. It reads only the warehouse, so its task has no
# task role and gets only the warehouse secret. It listens on var.payments_api_port for the
# CIDRs in var.payments_api_allowed_cidrs; in front of real users, put a load balancer with TLS
# there (not part of this stack).

resource "aws_ecs_task_definition" "payments_api" {
  count = var.payments_api ? 1 : 0

  family                   = "${var.name}-payments-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "payments-api"
    image                  = "${aws_ecr_repository.pipeline.repository_url}:${var.image_tag}"
    essential              = true
    command                = ["api", "--host", "0.0.0.0", "--port", tostring(var.payments_api_port)]
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    portMappings           = [{ containerPort = var.payments_api_port, protocol = "tcp" }]
    environment            = [{ name = "HOME", value = "/tmp" }]
    secrets = [
      { name = "TOTES_WAREHOUSE_URL", valueFrom = aws_secretsmanager_secret.warehouse_url.arn },
    ]
    healthCheck = {
      command  = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${var.payments_api_port}/health', timeout=4)"]
      interval = 30
      timeout  = 5
      retries  = 3
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.pipeline.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "api"
      }
    }
  }])
}

resource "aws_security_group" "payments_api" {
  count = var.payments_api ? 1 : 0

  name        = "${var.name}-payments-api"
  description = "The payments API: its port from the allowed CIDRs; the warehouse outbound"
  vpc_id      = data.aws_vpc.selected.id
}

resource "aws_vpc_security_group_ingress_rule" "payments_api" {
  for_each = var.payments_api ? toset(var.payments_api_allowed_cidrs) : toset([])

  security_group_id = aws_security_group.payments_api[0].id
  description       = "API clients"
  ip_protocol       = "tcp"
  from_port         = var.payments_api_port
  to_port           = var.payments_api_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "payments_api" {
  for_each = var.payments_api ? toset(concat(["443"], [for port in var.database_ports : tostring(port)])) : toset([])

  security_group_id = aws_security_group.payments_api[0].id
  description       = "ECR and Secrets Manager over HTTPS; the warehouse Postgres"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_ecs_service" "payments_api" {
  count = var.payments_api ? 1 : 0

  name            = "${var.name}-payments-api"
  cluster         = aws_ecs_cluster.pipeline.id
  task_definition = aws_ecs_task_definition.payments_api[0].arn
  desired_count   = 1
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = local.subnet_ids
    security_groups  = [aws_security_group.payments_api[0].id]
    assign_public_ip = var.assign_public_ip
  }
}
