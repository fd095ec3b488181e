# Names and lookups shared by every file. One file per concern:
#   storage.tf    the landing (ingestion) and processed buckets, the docs prefix
#   registry.tf   the image repository
#   secrets.tf    the source and warehouse URLs, and the payments API's bearer tokens
#   network.tf    where the task runs and what it may reach
#   task.tf       the ECS cluster, task definition and log group
#   schedule.tf   how runs start: a schedule (a task every 5 minutes), or a service (one task
#                 running `totes run --every`), by var.run_mode
#   iam.tf        the task, execution and scheduler roles
#   alerts.tf     the alert topic, the failed-task rule and the alarms
#   warehouse_db.tf  the optional RDS warehouse
#   payments_api.tf  the optional payments API: its service, role, HTTPS load balancer and name
#   kms.tf        the key that encrypts all of the above

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  # bucket names are global: the account and region make them unique
  bucket_suffix = "${local.account_id}-${var.region}"

  lake_prefix      = "landing"
  processed_prefix = "star"
  docs_prefix      = "docs"

  lake_url      = "s3://${module.ingestion_bucket.bucket}/${local.lake_prefix}"
  processed_url = "s3://${module.processed_bucket.bucket}/${local.processed_prefix}"
  log_group     = "/ecs/${var.name}"
}
