locals {
  warehouse_step = (var.create_warehouse_db
    ? "The warehouse secret already holds the URL of the RDS database ${try(aws_db_instance.warehouse[0].address, "")}."
    : "And the warehouse URL (postgresql://...):\n         aws secretsmanager put-secret-value --secret-id ${aws_secretsmanager_secret.warehouse_url.name} --secret-string \"$WAREHOUSE_URL\""
  )
}

output "next_steps" {
  description = "What to do after the first apply."
  value       = <<-EOT
    1. Confirm the subscription mailed to ${var.alert_email}, or no alert arrives.
    2. Put the source URL (postgresql://user:...@host:port/totesys) into its secret, once;
       Terraform never sees it:
         aws secretsmanager put-secret-value --secret-id ${aws_secretsmanager_secret.source_url.name} --secret-string "$SOURCE_URL"
    3. ${local.warehouse_step}
    4. ${local.continuous ? "The service runs the pipeline every ${var.run_every_seconds} seconds" : "The schedule starts a run every 5 minutes"}. Follow it:
         aws logs tail ${aws_cloudwatch_log_group.pipeline.name} --follow
  EOT
}

output "run_task_command" {
  description = "Start one run by hand, besides the schedule or the service (a run that finds another holding the warehouse lock exits at once)."
  value = join(" ", [
    "aws ecs run-task --cluster ${aws_ecs_cluster.pipeline.name}",
    "--task-definition ${aws_ecs_task_definition.pipeline.arn}",
    "--launch-type FARGATE",
    "--network-configuration 'awsvpcConfiguration={subnets=[${join(",", local.subnet_ids)}],securityGroups=[${aws_security_group.task.id}],assignPublicIp=${var.assign_public_ip ? "ENABLED" : "DISABLED"}}'",
    # one run and exit, also when the task definition's command is continuous mode's
    "--overrides '${jsonencode({ containerOverrides = [{ name = "pipeline", command = ["run"] }] })}'",
  ])
}

output "ecr_repository_url" {
  description = "Where deploy.sh pushes the image."
  value       = aws_ecr_repository.pipeline.repository_url
}

output "lake_url" {
  description = "TOTES_LAKE_URL of the deployed pipeline (the landing zone)."
  value       = local.lake_url
}

output "processed_url" {
  description = "TOTES_PROCESSED_URL of the deployed pipeline (the star schema as parquet)."
  value       = local.processed_url
}

output "docs_url" {
  description = "Where deploy.sh puts the static dbt docs site; open it with `aws s3 presign`."
  value       = "s3://${module.processed_bucket.bucket}/${local.docs_prefix}/index.html"
}

output "log_group" {
  description = "The pipeline's CloudWatch log group."
  value       = aws_cloudwatch_log_group.pipeline.name
}

output "alert_topic_arn" {
  description = "The SNS topic every alert goes to."
  value       = aws_sns_topic.alerts.arn
}

output "source_url_secret" {
  description = "Secrets Manager name holding TOTES_SOURCE_URL."
  value       = aws_secretsmanager_secret.source_url.name
}

output "warehouse_url_secret" {
  description = "Secrets Manager name holding TOTES_WAREHOUSE_URL."
  value       = aws_secretsmanager_secret.warehouse_url.name
}

output "warehouse_db_address" {
  description = "Host of the optional RDS warehouse (null without create_warehouse_db)."
  value       = one(aws_db_instance.warehouse[*].address)
}

output "athena_workgroup" {
  description = "The Athena workgroup analysts query the zones in (encrypted results, a scan limit per query): aws athena start-query-execution --work-group <this>."
  value       = aws_athena_workgroup.analysts.name
}

output "glue_databases" {
  description = "The Glue database of each zone, as Athena names them in queries: {lake = ..., processed = ...}."
  value       = { for zone, database in aws_glue_catalog_database.zone : zone => database.name }
}

output "analyst_role_arn" {
  description = "The role analysts assume to query the zones through the workgroup (read-only)."
  value       = aws_iam_role.analyst.arn
}

output "payments_api_url" {
  description = "Where the payments API answers, over HTTPS only (null without payments_api)."
  value       = var.payments_api ? "https://${var.payments_api_domain_name}" : null
}

output "payments_api_tokens_secret" {
  description = "Secrets Manager name holding the bearer tokens the payments API accepts, separated by whitespace; the API rereads it every minute (null without payments_api)."
  value       = one(aws_secretsmanager_secret.api_tokens[*].name)
}

output "payments_api_put_token_command" {
  description = "Make one new random token the payments API's only one (read it back with get-secret-value). To rotate without a gap, put the old and the new token together, then the new alone once clients use it."
  value = (var.payments_api
    ? "aws secretsmanager put-secret-value --secret-id ${aws_secretsmanager_secret.api_tokens[0].name} --secret-string \"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\""
    : null
  )
}
