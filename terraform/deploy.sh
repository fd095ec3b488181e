#!/usr/bin/env bash
# `make deploy`: an empty AWS account to a running, alerting pipeline, and every later release.
#   ALERT_EMAIL=you@example.com make deploy
# Needs aws (v2, signed in), terraform (1.11+) and docker. Settings, all optional except the
# address (which terraform/terraform.tfvars may hold instead, with any other variable):
#   AWS_REGION (eu-west-2), TOTES_STACK_NAME (totes), AUTO_APPROVE=1 (no apply prompt, for CI),
#   GITHUB_DEPLOY_REPOSITORY=owner/name (the bootstrap creates a role its main branch deploys with)
set -euo pipefail
cd "$(dirname "$0")/.."

export AWS_REGION="${AWS_REGION:-eu-west-2}"
name="${TOTES_STACK_NAME:-totes}"

fail() {
    echo "deploy: $*" >&2
    exit 2
}
for tool in aws terraform docker; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (README: Deploy to AWS)"
done
if [[ -z "${ALERT_EMAIL:-}" && ! -f terraform/terraform.tfvars ]]; then
    fail "set ALERT_EMAIL (or alert_email in terraform/terraform.tfvars): alerts need an address"
fi
# an image tag is a commit, and tags are immutable: uncommitted changes get their own tag
tag="$(git rev-parse --short=12 HEAD)"
if [[ -n "$(git status --porcelain)" ]]; then
    tag="$tag-dirty-$(date +%s)"
fi

account="$(aws sts get-caller-identity --query Account --output text)"
state_bucket="$name-tfstate-$account-$AWS_REGION"
vars=(-var "region=$AWS_REGION" -var "name=$name" -var "image_tag=$tag")
if [[ -n "${ALERT_EMAIL:-}" ]]; then
    vars+=(-var "alert_email=$ALERT_EMAIL")
fi
# the whole stack's plan is shown and asked about, unless CI says otherwise
approve=()
if [[ "${AUTO_APPROVE:-0}" == 1 ]]; then
    approve=(-input=false -auto-approve)
fi

echo "== 1/5 Terraform state: s3://$state_bucket"
if ! aws s3api head-bucket --bucket "$state_bucket" 2>/dev/null; then
    bootstrap=(-var "region=$AWS_REGION" -var "name=$name")
    if [[ -n "${GITHUB_DEPLOY_REPOSITORY:-}" ]]; then
        bootstrap+=(-var "github_repository=$GITHUB_DEPLOY_REPOSITORY")
    fi
    terraform -chdir=terraform/bootstrap init -input=false
    terraform -chdir=terraform/bootstrap apply -input=false -auto-approve "${bootstrap[@]}"
fi
terraform -chdir=terraform init -input=false -reconfigure \
    -backend-config="bucket=$state_bucket" -backend-config="region=$AWS_REGION"

echo "== 2/5 the image repository"
terraform -chdir=terraform apply -input=false -auto-approve "${vars[@]}" \
    -target=aws_ecr_repository.pipeline -target=aws_ecr_lifecycle_policy.pipeline
repository="$(terraform -chdir=terraform output -raw ecr_repository_url)"

echo "== 3/5 the image $repository:$tag"
if aws ecr describe-images --repository-name "$name" --image-ids "imageTag=$tag" >/dev/null 2>&1; then
    echo "already pushed"
else
    aws ecr get-login-password | docker login --username AWS --password-stdin "${repository%%/*}"
    docker build --platform linux/amd64 -f docker/Dockerfile -t "$repository:$tag" .
    docker push "$repository:$tag"
fi

echo "== 4/5 the stack"
# (the odd expansion keeps an empty array safe under set -u in macOS's bash 3.2)
terraform -chdir=terraform apply ${approve[@]+"${approve[@]}"} "${vars[@]}"

echo "== 5/5 the dbt docs site"
make docs
docs_url="$(terraform -chdir=terraform output -raw docs_url)"
aws s3 cp target/static_index.html "$docs_url" --content-type text/html
echo "open it for an hour: aws s3 presign $docs_url --expires-in 3600"
echo
terraform -chdir=terraform output -raw next_steps
