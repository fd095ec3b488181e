# Optional (var.payments_api, off by default): the payments API as an always-on ECS service,
# the same image with `api` as its command, behind an Application Load Balancer that ends TLS:
#   - the load balancer is internal unless payments_api_internet_facing, and reachable from
#     payments_api_allowed_cidrs only. HTTPS (443) serves a certificate the stack issues for
#     payments_api_domain_name; HTTP (80) only redirects to it. Its access logs go to a bucket
#     of their own
#   - the task accepts its port from the load balancer's security group only. It reads the
#     warehouse (its secret, handed over by ECS) and the bearer tokens it accepts: the api-tokens
#     secret (secrets.tf), which it rereads every minute through its own role, so a new token
#     needs no redeploy. Put one (the secret holds the accepted tokens, separated by whitespace:
#     the old and the new while clients move) with the output payments_api_put_token_command

locals {
  # uvicorn takes the client's address from X-Forwarded-For only when an address of the VPC (the
  # load balancer) sent it; the API limits failed credentials per client address
  payments_api_proxies = join(",", [
    for association in data.aws_vpc.selected.cidr_block_associations : association.cidr_block
    if association.state == "associated"
  ])
}

resource "aws_ecs_task_definition" "payments_api" {
  count = var.payments_api ? 1 : 0

  family                   = "${var.name}-payments-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.payments_api[0].arn

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
    environment = [
      { name = "HOME", value = "/tmp" },
      { name = "AWS_REGION", value = var.region },
      { name = "TOTES_API_TOKENS_SECRET", value = aws_secretsmanager_secret.api_tokens[0].arn },
      { name = "FORWARDED_ALLOW_IPS", value = local.payments_api_proxies },
    ]
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

resource "aws_ecs_service" "payments_api" {
  #checkov:skip=CKV_AWS_333:var.assign_public_ip, as for the pipeline's task: without a NAT the task reaches ECR and Secrets Manager by its public IP; its security group accepts only the load balancer
  count = var.payments_api ? 1 : 0

  name                              = "${var.name}-payments-api"
  cluster                           = aws_ecs_cluster.pipeline.id
  task_definition                   = aws_ecs_task_definition.payments_api[0].arn
  desired_count                     = 1
  launch_type                       = "FARGATE"
  health_check_grace_period_seconds = 60

  network_configuration {
    subnets          = local.subnet_ids
    security_groups  = [aws_security_group.payments_api[0].id]
    assign_public_ip = var.assign_public_ip
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.payments_api[0].arn
    container_name   = "payments-api"
    container_port   = var.payments_api_port
  }

  # a service registers only in a target group that a load balancer's listener uses
  depends_on = [aws_lb_listener.payments_api_https]
}

# --- the task's role: read the tokens it accepts ---------------------------------------------

resource "aws_iam_role" "payments_api" {
  count = var.payments_api ? 1 : 0

  name               = "${var.name}-payments-api"
  description        = "The payments API process: the bearer tokens it accepts"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "payments_api" {
  count = var.payments_api ? 1 : 0

  statement {
    sid       = "ReadTheTokens"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.api_tokens[0].arn]
  }

  statement {
    sid       = "DecryptTheTokens"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.totes.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "payments_api" {
  count = var.payments_api ? 1 : 0

  name   = "read-api-tokens"
  role   = aws_iam_role.payments_api[0].id
  policy = data.aws_iam_policy_document.payments_api[0].json
}

# --- security groups: clients -> load balancer -> task ---------------------------------------

locals {
  # each allowed CIDR on 443, and on 80 only to be redirected to 443
  payments_api_lb_ingress = var.payments_api ? {
    for pair in setproduct(["443", "80"], var.payments_api_allowed_cidrs) : "${pair[0]} ${pair[1]}" => { port = tonumber(pair[0]), cidr = pair[1] }
  } : {}
}

resource "aws_security_group" "payments_api_lb" {
  count = var.payments_api ? 1 : 0

  name        = "${var.name}-payments-api-lb"
  description = "The payments API load balancer: 443 and 80 from the allowed CIDRs; the task outbound"
  vpc_id      = data.aws_vpc.selected.id
}

resource "aws_vpc_security_group_ingress_rule" "payments_api_lb" {
  for_each = local.payments_api_lb_ingress

  security_group_id = aws_security_group.payments_api_lb[0].id
  description       = each.value.port == 443 ? "API clients over HTTPS" : "API clients over HTTP, redirected to HTTPS"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "payments_api_lb" {
  count = var.payments_api ? 1 : 0

  security_group_id            = aws_security_group.payments_api_lb[0].id
  description                  = "The API task: requests and health checks"
  ip_protocol                  = "tcp"
  from_port                    = var.payments_api_port
  to_port                      = var.payments_api_port
  referenced_security_group_id = aws_security_group.payments_api[0].id
}

resource "aws_security_group" "payments_api" {
  count = var.payments_api ? 1 : 0

  name        = "${var.name}-payments-api"
  description = "The payments API task: its port from the load balancer only; the warehouse outbound"
  vpc_id      = data.aws_vpc.selected.id
}

resource "aws_vpc_security_group_ingress_rule" "payments_api" {
  count = var.payments_api ? 1 : 0

  security_group_id            = aws_security_group.payments_api[0].id
  description                  = "The load balancer, and nothing else"
  ip_protocol                  = "tcp"
  from_port                    = var.payments_api_port
  to_port                      = var.payments_api_port
  referenced_security_group_id = aws_security_group.payments_api_lb[0].id
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

# --- the load balancer -----------------------------------------------------------------------

resource "aws_lb" "payments_api" {
  #checkov:skip=CKV2_AWS_28:no WAF ($5/month and up): the API limits failed credentials per client itself, and the load balancer is internal unless payments_api_internet_facing
  #checkov:skip=CKV_AWS_150:make destroy must be able to remove the sandbox; deletion protection follows destroy_data_with_stack
  count = var.payments_api ? 1 : 0

  name                       = "${var.name}-api"
  load_balancer_type         = "application"
  internal                   = !var.payments_api_internet_facing
  subnets                    = local.subnet_ids
  security_groups            = [aws_security_group.payments_api_lb[0].id]
  drop_invalid_header_fields = true
  enable_deletion_protection = !var.destroy_data_with_stack

  access_logs {
    bucket  = aws_s3_bucket.payments_api_logs[0].id
    enabled = true
  }

  # the load balancer checks that it may write its logs when it is created
  depends_on = [aws_s3_bucket_policy.payments_api_logs]
}

resource "aws_lb_target_group" "payments_api" {
  count = var.payments_api ? 1 : 0

  name                 = "${var.name}-api"
  target_type          = "ip" # Fargate tasks register by their address
  protocol             = "HTTP"
  port                 = var.payments_api_port
  vpc_id               = data.aws_vpc.selected.id
  deregistration_delay = 30

  health_check {
    path                = "/health" # the one route that needs no credential
    matcher             = "200"
    interval            = 30
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "payments_api_https" {
  count = var.payments_api ? 1 : 0

  load_balancer_arn = aws_lb.payments_api[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06" # TLS 1.2 and 1.3 only
  certificate_arn   = aws_acm_certificate_validation.payments_api[0].certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.payments_api[0].arn
  }
}

resource "aws_lb_listener" "payments_api_http" {
  count = var.payments_api ? 1 : 0

  load_balancer_arn = aws_lb.payments_api[0].arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

# --- the certificate and the name ------------------------------------------------------------

resource "aws_acm_certificate" "payments_api" {
  count = var.payments_api ? 1 : 0

  domain_name       = var.payments_api_domain_name
  validation_method = "DNS" # renewed by ACM for as long as the record below exists

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  lifecycle {
    create_before_destroy = true # the listener always has a certificate
  }
}

resource "aws_route53_record" "payments_api_validation" {
  count = var.payments_api ? 1 : 0

  zone_id         = var.payments_api_zone_id
  name            = tolist(aws_acm_certificate.payments_api[0].domain_validation_options)[0].resource_record_name
  type            = tolist(aws_acm_certificate.payments_api[0].domain_validation_options)[0].resource_record_type
  records         = [tolist(aws_acm_certificate.payments_api[0].domain_validation_options)[0].resource_record_value]
  ttl             = 300
  allow_overwrite = true # a rebuilt stack's certificate asks for the same record
}

resource "aws_acm_certificate_validation" "payments_api" {
  count = var.payments_api ? 1 : 0

  certificate_arn         = aws_acm_certificate.payments_api[0].arn
  validation_record_fqdns = [aws_route53_record.payments_api_validation[0].fqdn]
}

resource "aws_route53_record" "payments_api" {
  count = var.payments_api ? 1 : 0

  zone_id = var.payments_api_zone_id
  name    = var.payments_api_domain_name
  type    = "A"

  alias {
    name                   = aws_lb.payments_api[0].dns_name
    zone_id                = aws_lb.payments_api[0].zone_id
    evaluate_target_health = true
  }
}

# --- the load balancer's access logs ---------------------------------------------------------
# A bucket of their own, as private as the others but encrypted with S3's keys: ALB access logs
# support only SSE-S3, not the stack's KMS key, so the private_bucket module does not fit.

locals {
  # ELB delivers the logs as the log-delivery service in regions opened from August 2022, and as
  # its account of the region in the older ones (AWS, "Enable access logs for your Application
  # Load Balancer"): the regions that have such an account, as aws_elb_service_account knows them
  elb_account_regions = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-north-1",
    "af-south-1", "me-south-1", "ap-east-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "us-gov-east-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1",
  ]
}

data "aws_elb_service_account" "current" {
  count = var.payments_api && contains(local.elb_account_regions, var.region) ? 1 : 0
}

resource "aws_s3_bucket" "payments_api_logs" {
  #checkov:skip=CKV_AWS_145:ALB access logs support only SSE-S3 (AES256), not KMS
  #checkov:skip=CKV_AWS_18:these are access logs; logging their reads would need another bucket, and CloudTrail data events are the account-wide place for that
  #checkov:skip=CKV_AWS_144:one region, versioned; a second region's copy would double storage for a sandbox rebuilt weekly
  #checkov:skip=CKV2_AWS_62:nothing consumes object events; the logs are read when someone looks into a request
  count = var.payments_api ? 1 : 0

  bucket        = "${var.name}-api-logs-${local.bucket_suffix}"
  force_destroy = var.destroy_data_with_stack
}

resource "aws_s3_bucket_public_access_block" "payments_api_logs" {
  count = var.payments_api ? 1 : 0

  bucket                  = aws_s3_bucket.payments_api_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "payments_api_logs" {
  count = var.payments_api ? 1 : 0

  bucket = aws_s3_bucket.payments_api_logs[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "payments_api_logs" {
  count = var.payments_api ? 1 : 0

  bucket = aws_s3_bucket.payments_api_logs[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "payments_api_logs" {
  count = var.payments_api ? 1 : 0

  bucket = aws_s3_bucket.payments_api_logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256" # the only encryption ALB log delivery supports
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "payments_api_logs" {
  count = var.payments_api ? 1 : 0

  bucket = aws_s3_bucket.payments_api_logs[0].id

  rule {
    id     = "age"
    status = "Enabled"
    filter {}

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.payments_api_logs]
}

data "aws_iam_policy_document" "payments_api_logs" {
  count = var.payments_api ? 1 : 0

  statement {
    sid       = "LogDeliveryWritesTheLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.payments_api_logs[0].arn}/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  # in a region older than August 2022, the region's ELB account writes them
  dynamic "statement" {
    for_each = data.aws_elb_service_account.current
    content {
      sid       = "TheRegionsElbAccountWritesTheLogs"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.payments_api_logs[0].arn}/AWSLogs/${local.account_id}/*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value.arn]
      }
    }
  }

  statement {
    sid     = "DenyPlainHttp"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.payments_api_logs[0].arn,
      "${aws_s3_bucket.payments_api_logs[0].arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "payments_api_logs" {
  count = var.payments_api ? 1 : 0

  bucket = aws_s3_bucket.payments_api_logs[0].id
  policy = data.aws_iam_policy_document.payments_api_logs[0].json

  depends_on = [aws_s3_bucket_public_access_block.payments_api_logs]
}
