terraform {
  # 1.11: write-only arguments keep the generated warehouse password out of state
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
  }

  # Filled in at `terraform init` by terraform/deploy.sh from the bootstrap's outputs:
  # -backend-config="bucket=..." -backend-config="region=..."
  backend "s3" {
    key          = "totes/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = var.name
      managed_by = "terraform"
    }
  }
}
