# How runs start (var.run_mode):
#   scheduled   EventBridge Scheduler starts one task per run, every 5 minutes. A run that finds
#               the previous one still going exits 0 at once (the warehouse lock), so slow runs
#               never pile up.
#   continuous  an ECS service keeps one task running `totes run --every`: a run every
#               run_every_seconds, start to start, without a task's start-up time per run.

locals {
  continuous = var.run_mode == "continuous"
}

# --- scheduled -------------------------------------------------------------------------------

resource "aws_sqs_queue" "schedule_dead_letters" {
  count = local.continuous ? 0 : 1

  name                      = "${var.name}-schedule-dead-letters"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps
  sqs_managed_sse_enabled   = true
}

resource "aws_scheduler_schedule" "pipeline" {
  #checkov:skip=CKV_AWS_297:the schedule holds no secret (ARNs, subnets); AWS-owned encryption is enough
  count = local.continuous ? 0 : 1

  name                = var.name
  schedule_expression = var.schedule_expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.pipeline.arn
    role_arn = aws_iam_role.scheduler[0].arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.pipeline.arn
      launch_type         = "FARGATE"
      task_count          = 1

      network_configuration {
        subnets          = local.subnet_ids
        security_groups  = [aws_security_group.task.id]
        assign_public_ip = var.assign_public_ip
      }
    }

    # retries cover RunTask calls that fail (throttling, no capacity), within one interval
    retry_policy {
      maximum_event_age_in_seconds = 240
      maximum_retry_attempts       = 3
    }

    dead_letter_config {
      arn = aws_sqs_queue.schedule_dead_letters[0].arn
    }
  }
}

# --- continuous ------------------------------------------------------------------------------

resource "aws_ecs_service" "pipeline" {
  #checkov:skip=CKV_AWS_333:var.assign_public_ip, as for the scheduled task: without a NAT the task reaches ECR and S3 by its public IP; its security group allows nothing inbound
  count = local.continuous ? 1 : 0

  name            = var.name
  cluster         = aws_ecs_cluster.pipeline.id
  task_definition = aws_ecs_task_definition.pipeline.arn
  desired_count   = 1
  launch_type     = "FARGATE"

  # never two runs at once: a deploy stops the old task (its stage finishes, stopTimeout) before
  # it starts the new one
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  # a release whose task cannot start goes back to the last one that could (and alerts)
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # apply returns once the service is updated; the alerts, not Terraform, watch the task
  wait_for_steady_state = false

  network_configuration {
    subnets          = local.subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = var.assign_public_ip
  }
}
