# The landing zone (dlt's append-only parquet) and the processed zone (the star schema as
# parquet, plus the static dbt docs site under docs/).

module "ingestion_bucket" {
  source = "./modules/private_bucket"

  name          = "${var.name}-ingestion-${local.bucket_suffix}"
  kms_key_arn   = aws_kms_key.totes.arn
  force_destroy = var.destroy_data_with_stack
  # old loads are read again only by `totes rebuild`: cheaper classes that still read instantly
  transitions = [
    { days = var.landing_infrequent_access_days, storage_class = "STANDARD_IA" },
    { days = var.landing_glacier_days, storage_class = "GLACIER_IR" },
  ]
  noncurrent_version_days = var.noncurrent_version_days
}

module "processed_bucket" {
  source = "./modules/private_bucket"

  name                    = "${var.name}-processed-${local.bucket_suffix}"
  kms_key_arn             = aws_kms_key.totes.arn
  force_destroy           = var.destroy_data_with_stack
  noncurrent_version_days = var.noncurrent_version_days
}
