# The pipeline's Fargate task: `totes run` in the image (once per task when scheduled, every
# run_every_seconds in continuous mode), logs to CloudWatch (JSON lines; the EMF ones become the
# `totes` metrics the alarms watch).

resource "aws_ecs_cluster" "pipeline" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "pipeline" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.totes.arn
}

locals {
  # the source's key check (it finds deletes) runs every TOTES_KEY_CHECK_EVERY runs: its default,
  # 12, is hourly at 5 minutes a run; in continuous mode it stays about hourly
  key_check_every = ceil(3600 / var.run_every_seconds)
  mode_environment = local.continuous ? [
    { name = "TOTES_KEY_CHECK_EVERY", value = tostring(local.key_check_every) },
  ] : []
}

resource "aws_ecs_task_definition" "pipeline" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # the root filesystem is read-only; dbt's target, dlt's working folders and HOME live here
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name      = "pipeline"
    image     = "${aws_ecr_repository.pipeline.repository_url}:${var.image_tag}"
    essential = true
    # a task started by hand overrides this with ["run"] (outputs.tf): one run, then exit
    command = local.continuous ? ["run", "--every", tostring(var.run_every_seconds)] : ["run"]
    # SIGTERM (a deploy, a stop) lets the stage in progress finish; ECS kills the process after
    # this many seconds, the most Fargate allows
    stopTimeout            = 120
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    environment = concat([
      { name = "TOTES_LAKE_URL", value = local.lake_url },
      { name = "TOTES_PROCESSED_URL", value = local.processed_url },
      { name = "TOTES_ALERT_TOPIC_ARN", value = aws_sns_topic.alerts.arn },
      { name = "TOTES_LOG_GROUP", value = local.log_group },
      { name = "TOTES_LOG_FORMAT", value = "json" },
      { name = "TOTES_FX_URL", value = var.fx_url },
      { name = "TOTES_DELIVERIES_URL", value = local.deliveries_url },
      { name = "AWS_REGION", value = var.region },
      { name = "HOME", value = "/tmp" },
    ], local.mode_environment)
    # ECS reads these with the execution role when the task starts; they reach the process as
    # environment variables and are never part of the task definition
    secrets = [
      { name = "TOTES_SOURCE_URL", valueFrom = aws_secretsmanager_secret.source_url.arn },
      { name = "TOTES_WAREHOUSE_URL", valueFrom = aws_secretsmanager_secret.warehouse_url.arn },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.pipeline.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "run"
      }
    }
  }])
}
