# Three roles, each with only what its job needs (the optional services have their own beside
# them: the payments API's in payments_api.tf, Slack's in slack.tf):
#   task       the pipeline's own AWS calls: the two buckets' prefixes, publish to the alert topic
#   execution  what ECS does before the process starts: pull the image, write logs, read the
#              two secrets into the environment
#   scheduler  start this task definition on this cluster, and dead-letter what it cannot start
#              (scheduled mode only: the continuous mode's service needs no role of ours)
# Metrics need no permission: they are EMF log lines, which CloudWatch Logs turns into metrics.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- task role -------------------------------------------------------------------------------

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  description        = "The totes pipeline process: its buckets and its alert topic"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ListTheZones"
    actions   = ["s3:ListBucket"] # names only; objects are limited to the zones' prefixes below
    resources = [module.ingestion_bucket.arn, module.processed_bucket.arn]
  }

  statement {
    sid = "ReadAndWriteTheZones"
    # the lake compacts and the export replaces files, so both zones also delete
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [
      "${module.ingestion_bucket.arn}/${local.lake_prefix}/*",
      "${module.processed_bucket.arn}/${local.processed_prefix}/*",
    ]
  }

  statement {
    sid       = "UseTheKeyForTheZonesAndTheTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.totes.arn]
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "pipeline"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- execution role --------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  description        = "ECS starting the totes task: image, logs, secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "LogIn"
    actions   = ["ecr:GetAuthorizationToken"] # an account-wide call: it takes no resource
    resources = ["*"]
  }

  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [aws_ecr_repository.pipeline.arn]
  }

  statement {
    sid       = "WriteTheLog"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.pipeline.arn}:*"]
  }

  statement {
    sid     = "ReadTheTwoSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.source_url.arn,
      aws_secretsmanager_secret.warehouse_url.arn,
    ]
  }

  statement {
    sid       = "DecryptTheSecretsAndTheImage"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.totes.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-task"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- scheduler role --------------------------------------------------------------------------

resource "aws_iam_role" "scheduler" {
  count = local.continuous ? 0 : 1

  name        = "${var.name}-scheduler"
  description = "EventBridge Scheduler starting the totes task"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "scheduler.amazonaws.com" }
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

data "aws_iam_policy_document" "scheduler" {
  count = local.continuous ? 0 : 1

  statement {
    sid       = "RunTheTask"
    actions   = ["ecs:RunTask"]
    resources = [aws_ecs_task_definition.pipeline.arn]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.pipeline.arn]
    }
  }

  statement {
    sid       = "HandTheTaskItsRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task.arn, aws_iam_role.execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.schedule_dead_letters[0].arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count = local.continuous ? 0 : 1

  name   = "run-task"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler[0].json
}
