#!/usr/bin/env bash
# `make destroy`: tear down everything `make deploy` built, except the Terraform state bucket
# (the bootstrap's; remove it with `terraform -chdir=terraform/bootstrap destroy` once empty).
# With destroy_data_with_stack (the default) the buckets' data and the images go too.
set -euo pipefail
cd "$(dirname "$0")/.."

export AWS_REGION="${AWS_REGION:-eu-west-2}"
name="${TOTES_STACK_NAME:-totes}"
for tool in aws terraform; do
    command -v "$tool" >/dev/null || { echo "destroy: $tool is not installed" >&2; exit 2; }
done

account="$(aws sts get-caller-identity --query Account --output text)"
state_bucket="$name-tfstate-$account-$AWS_REGION"
terraform -chdir=terraform init -input=false -reconfigure \
    -backend-config="bucket=$state_bucket" -backend-config="region=$AWS_REGION"
# destroy needs a value for every required variable; these two change nothing it removes
terraform -chdir=terraform destroy -input=false -var "region=$AWS_REGION" -var "name=$name" \
    -var "image_tag=unused" -var "alert_email=${ALERT_EMAIL:-unused@example.com}"
