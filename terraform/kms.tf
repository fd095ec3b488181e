# One customer-managed key for the buckets, secrets, logs, topic and image repository. The
# services that write into encrypted places on our behalf are named in its policy.
data "aws_iam_policy_document" "key" {
  # In a key policy the resource "*" is the key itself, and the account root statement is the
  # standard one that lets IAM policies grant use of the key; these checks are for IAM policies.
  #checkov:skip=CKV_AWS_109:a key policy: "*" is this key, and the root statement is required
  #checkov:skip=CKV_AWS_111:a key policy: "*" is this key
  #checkov:skip=CKV_AWS_356:a key policy: "*" is this key
  statement {
    sid       = "AccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" means this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsTheLogGroup"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${local.account_id}:log-group:${local.log_group}"]
    }
  }

  statement {
    sid       = "AlarmsAndEventsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "totes" {
  description             = "${var.name}: buckets, secrets, logs, alert topic, image repository"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "totes" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.totes.key_id
}
