output "state_bucket" {
  description = "Give it to `terraform init -backend-config=bucket=...` (deploy.sh does)."
  value       = module.state_bucket.bucket
}

output "deploy_role_arn" {
  description = "Store it as the GitHub repository variable AWS_DEPLOY_ROLE_ARN."
  value       = one(aws_iam_role.deploy[*].arn)
}
