# EventBridge Scheduler starts one task every 5 minutes. A run that finds the previous one still
# going exits 0 at once (the warehouse lock), so slow runs never pile up.

resource "aws_sqs_queue" "schedule_dead_letters" {
  name                      = "${var.name}-schedule-dead-letters"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps
  sqs_managed_sse_enabled   = true
}

resource "aws_scheduler_schedule" "pipeline" {
  #checkov:skip=CKV_AWS_297:the schedule holds no secret (ARNs, subnets); AWS-owned encryption is enough
  name                = var.name
  schedule_expression = var.schedule_expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.pipeline.arn
    role_arn = aws_iam_role.scheduler.arn

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
      arn = aws_sqs_queue.schedule_dead_letters.arn
    }
  }
}
