# Optional (var.slack_alerts, off by default): every message on the alert topic also goes to a
# Slack channel. A small Lambda (ingestion/ops/slack.py, the one file in its zip) subscribes to
# the topic and posts to a Slack incoming webhook. The webhook URL is a secret: Terraform
# creates the secret but never its value; put it once with
#   aws secretsmanager put-secret-value --secret-id <output slack_webhook_secret> --secret-string '...'

resource "aws_secretsmanager_secret" "slack_webhook" {
  #checkov:skip=CKV2_AWS_57:Slack issues webhook URLs; to replace one, make a new webhook in Slack and put its URL here
  count = var.slack_alerts ? 1 : 0

  name                    = "${var.name}/slack-webhook-url"
  description             = "The Slack incoming-webhook URL the alerts are posted to"
  kms_key_id              = aws_kms_key.totes.arn
  recovery_window_in_days = var.destroy_data_with_stack ? 0 : 7
}

data "archive_file" "slack_alerts" {
  count = var.slack_alerts ? 1 : 0

  type        = "zip"
  source_file = "${path.module}/../ingestion/ops/slack.py"
  output_path = "${path.module}/.terraform/slack-alerts.zip" # .terraform/ is git-ignored
}

resource "aws_lambda_function" "slack_alerts" {
  #checkov:skip=CKV_AWS_117:it calls only Secrets Manager and Slack over HTTPS; in a VPC it would need a NAT gateway for that
  #checkov:skip=CKV_AWS_115:reserved concurrency takes from the account's pool, which in a new account cannot spare any; a few alerts an hour need none
  #checkov:skip=CKV_AWS_116:a message Lambda gives up on after its retries was also mailed (alerts.tf); a queue of them would have no reader
  #checkov:skip=CKV_AWS_272:the code is one file of this repository, zipped by Terraform at apply; only the deploying role can change it
  #checkov:skip=CKV_AWS_173:its one variable is the secret's ARN, not a secret; Lambda encrypts it at rest anyway
  #checkov:skip=CKV_AWS_50:one HTTPS call per alert; its log line says whether Slack took it
  count = var.slack_alerts ? 1 : 0

  function_name    = "${var.name}-slack-alerts"
  description      = "Posts each message of the ${var.name} alert topic to Slack"
  role             = aws_iam_role.slack_alerts[0].arn
  runtime          = "python3.12"
  handler          = "slack.handler"
  architectures    = ["arm64"]
  filename         = data.archive_file.slack_alerts[0].output_path
  source_code_hash = data.archive_file.slack_alerts[0].output_base64sha256
  memory_size      = 128
  timeout          = 30 # the secret, then a POST that gives up after 10 seconds

  environment {
    variables = {
      TOTES_SLACK_WEBHOOK_SECRET = aws_secretsmanager_secret.slack_webhook[0].arn
    }
  }

  # Into the pipeline's log group, as the payments API's log: it has the retention and the key,
  # and the key's policy lets CloudWatch Logs use the key for that one group (kms.tf).
  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.pipeline.name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }
}

resource "aws_lambda_permission" "slack_alerts" {
  count = var.slack_alerts ? 1 : 0

  statement_id  = "TheAlertTopicInvokes"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.slack_alerts[0].function_name
  principal     = "sns.amazonaws.com"
  source_arn    = aws_sns_topic.alerts.arn
}

resource "aws_sns_topic_subscription" "slack" {
  count = var.slack_alerts ? 1 : 0

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.slack_alerts[0].arn
}

# --- the Lambda's role: read its one secret, write its log -----------------------------------

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "slack_alerts" {
  count = var.slack_alerts ? 1 : 0

  name               = "${var.name}-slack-alerts"
  description        = "The Slack alert subscriber: its webhook secret and its log"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "slack_alerts" {
  count = var.slack_alerts ? 1 : 0

  statement {
    sid       = "ReadTheWebhookSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.slack_webhook[0].arn]
  }

  statement {
    sid       = "DecryptTheSecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.totes.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "WriteTheLog"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.pipeline.arn}:*"]
  }
}

resource "aws_iam_role_policy" "slack_alerts" {
  count = var.slack_alerts ? 1 : 0

  name   = "post-alerts"
  role   = aws_iam_role.slack_alerts[0].id
  policy = data.aws_iam_policy_document.slack_alerts[0].json
}

output "slack_webhook_secret" {
  description = "Secrets Manager name to put the Slack webhook URL in (null without slack_alerts)."
  value       = one(aws_secretsmanager_secret.slack_webhook[*].name)
}
