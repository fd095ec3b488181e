# The delivery partner's drop bucket: it writes JSON files of delivery events under the prefix
# (README: Delivery files), and the task only lists and reads them. A file that breaks the
# contract stays where it is; the task keeps a copy in the lake.

module "drop_bucket" {
  source = "./modules/private_bucket"

  name                    = "${var.name}-drop-${local.bucket_suffix}"
  kms_key_arn             = aws_kms_key.totes.arn
  force_destroy           = var.destroy_data_with_stack
  noncurrent_version_days = var.noncurrent_version_days
}

locals {
  deliveries_prefix = "deliveries"
  deliveries_url    = "s3://${module.drop_bucket.bucket}/${local.deliveries_prefix}"
}

data "aws_iam_policy_document" "read_deliveries" {
  statement {
    sid       = "ListTheDeliveries"
    actions   = ["s3:ListBucket"]
    resources = [module.drop_bucket.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.deliveries_prefix}/*", local.deliveries_prefix]
    }
  }

  statement {
    sid       = "ReadTheDeliveries"
    actions   = ["s3:GetObject"]
    resources = ["${module.drop_bucket.arn}/${local.deliveries_prefix}/*"]
  }
}

resource "aws_iam_role_policy" "read_deliveries" {
  name   = "read-deliveries"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.read_deliveries.json
}
