# Everything that can go wrong ends in one topic, which mails alert_email:
#   - the pipeline's own alerts (a failed run, the warehouse behind the SLA), deduplicated hourly
#   - a task that stopped with a non-zero exit, or never started (rule below): this also catches
#     what the process cannot report itself, such as running out of memory. A service's task is
#     one of them; a graceful stop (SIGTERM) exits 0 and is no failure
#   - in continuous mode, the service failing to keep its task running (rule below)
#   - the alarms: freshness, failed runs, schedules that could not start a task

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  kms_master_key_id = aws_kms_key.totes.arn
}

resource "aws_sns_topic_subscription" "email" {
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

data "aws_iam_policy_document" "alerts" {
  statement {
    sid       = "TheTaskAndServiceRulesPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = concat([aws_cloudwatch_event_rule.task_failed.arn], aws_cloudwatch_event_rule.service_impaired[*].arn)
    }
  }

  statement {
    sid       = "TheAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:cloudwatch:${var.region}:${local.account_id}:alarm:${var.name}-*"]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts.json
}

# --- a task that failed ----------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "task_failed" {
  name        = "${var.name}-task-failed"
  description = "A totes task stopped with a non-zero exit code, or could not start"
  event_pattern = jsonencode({
    source      = ["aws.ecs"]
    detail-type = ["ECS Task State Change"]
    detail = {
      clusterArn = [aws_ecs_cluster.pipeline.arn]
      lastStatus = ["STOPPED"]
      "$or" = [
        { containers = { exitCode = [{ anything-but = 0 }] } },
        { stopCode = ["TaskFailedToStart"] },
      ]
    }
  })
}

resource "aws_cloudwatch_event_target" "task_failed" {
  rule = aws_cloudwatch_event_rule.task_failed.name
  arn  = aws_sns_topic.alerts.arn

  input_transformer {
    input_paths = {
      task   = "$.detail.taskArn"
      reason = "$.detail.stoppedReason"
      exit   = "$.detail.containers[0].exitCode"
    }
    input_template = "\"totes task <task> stopped (exit code <exit>): <reason>. Its log is in ${local.log_group}.\""
  }
}

# --- a service that cannot keep its task running (continuous mode) ---------------------------

resource "aws_cloudwatch_event_rule" "service_impaired" {
  count = local.continuous ? 1 : 0

  name        = "${var.name}-service-impaired"
  description = "The totes service cannot start its task, or a release of it failed and rolled back"
  event_pattern = jsonencode({
    source      = ["aws.ecs"]
    detail-type = ["ECS Service Action", "ECS Deployment State Change"]
    resources   = [aws_ecs_service.pipeline[0].id]
    detail = {
      eventName = ["SERVICE_TASK_START_IMPAIRED", "SERVICE_DEPLOYMENT_FAILED"]
    }
  })
}

resource "aws_cloudwatch_event_target" "service_impaired" {
  count = local.continuous ? 1 : 0

  rule = aws_cloudwatch_event_rule.service_impaired[0].name
  arn  = aws_sns_topic.alerts.arn

  input_transformer {
    input_paths = {
      service = "$.resources[0]"
      event   = "$.detail.eventName"
    }
    input_template = "\"totes service <service>: <event>. No run happens until its task runs again; the service's events and ${local.log_group} say why.\""
  }
}

# --- alarms ----------------------------------------------------------------------------------

locals {
  alarm_period_seconds = 300
  # missing data counts as breaching: no run reporting is itself a freshness problem
  freshness_periods = max(1, floor(var.freshness_sla_minutes * 60 / 2 / local.alarm_period_seconds))
}

resource "aws_cloudwatch_metric_alarm" "freshness" {
  alarm_name          = "${var.name}-freshness"
  alarm_description   = "For ${local.freshness_periods * 5} minutes, every run reported the warehouse more than ${var.freshness_sla_minutes} minutes behind totesys, or no run reported at all."
  namespace           = "totes"
  metric_name         = "FreshnessLagSeconds"
  dimensions          = { Command = "run" }
  statistic           = "Maximum"
  period              = local.alarm_period_seconds
  evaluation_periods  = local.freshness_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.freshness_sla_minutes * 60
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "failed_runs" {
  alarm_name          = "${var.name}-failed-runs"
  alarm_description   = "A totes run failed. The log group ${local.log_group} has its error; ops.pipeline_runs in the warehouse has its stage."
  namespace           = "totes"
  metric_name         = "RunFailed"
  dimensions          = { Command = "run" }
  statistic           = "Sum"
  period              = local.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "schedule_dead_letters" {
  count = local.continuous ? 0 : 1

  alarm_name          = "${var.name}-schedule-dead-letters"
  alarm_description   = "The schedule could not start a task even after retries; the messages in ${aws_sqs_queue.schedule_dead_letters[0].name} say why."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.schedule_dead_letters[0].name }
  statistic           = "Maximum"
  period              = local.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}
