# Run once per account, with administrator credentials (deploy.sh does it when the state bucket
# is missing): the bucket that holds the stack's Terraform state, and optionally the role that
# GitHub Actions assumes through OIDC to deploy (no long-lived keys anywhere).
# Its own state is local (terraform/bootstrap/terraform.tfstate, git-ignored, no secrets in it).

terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = var.name
      managed_by = "terraform-bootstrap"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  account_id   = data.aws_caller_identity.current.account_id
  state_bucket = "${var.name}-tfstate-${local.account_id}-${var.region}"
}

module "state_bucket" {
  source = "../modules/private_bucket"

  name                    = local.state_bucket
  kms_key_arn             = aws_kms_key.state.arn
  force_destroy           = false # the state outlives every stack
  noncurrent_version_days = 90    # earlier states, to recover from a bad apply
}

resource "aws_kms_key" "state" {
  description             = "${var.name}: Terraform state"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministersTheKey"
      Effect    = "Allow"
      Action    = "kms:*"
      Resource  = "*"
      Principal = { AWS = "arn:aws:iam::${local.account_id}:root" }
    }]
  })
}

# --- GitHub Actions deploys through OIDC ----------------------------------------------------

resource "aws_iam_openid_connect_provider" "github" {
  count = var.github_repository == "" ? 0 : 1

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

resource "aws_iam_role" "deploy" {
  count = var.github_repository == "" ? 0 : 1

  name        = "${var.name}-github-deploy"
  description = "GitHub Actions deploying ${var.github_repository} from its main branch"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRoleWithWebIdentity"
      Principal = { Federated = aws_iam_openid_connect_provider.github[0].arn }
      Condition = {
        StringEquals = {
          "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"
          "token.actions.githubusercontent.com:sub" = "repo:${var.github_repository}:ref:refs/heads/main"
        }
      }
    }]
  })
}

# The deploy creates and replaces every resource of the stack, so it needs broad rights over
# the services the stack uses; IAM is limited to the stack's own roles.
resource "aws_iam_role_policy_attachment" "deploy_services" {
  count = var.github_repository == "" ? 0 : 1

  role       = aws_iam_role.deploy[0].name
  policy_arn = "arn:aws:iam::aws:policy/PowerUserAccess"
}

data "aws_iam_policy_document" "deploy_roles" {
  statement {
    sid = "ManageTheStacksRoles"
    actions = [
      "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:TagRole",
      "iam:UntagRole", "iam:PassRole", "iam:PutRolePolicy", "iam:GetRolePolicy",
      "iam:DeleteRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole", "iam:UpdateAssumeRolePolicy",
    ]
    resources = ["arn:aws:iam::${local.account_id}:role/${var.name}-*"]
  }
}

resource "aws_iam_role_policy" "deploy_roles" {
  count = var.github_repository == "" ? 0 : 1

  name   = "stack-roles"
  role   = aws_iam_role.deploy[0].id
  policy = data.aws_iam_policy_document.deploy_roles.json
}
