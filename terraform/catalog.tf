# Athena over the two zones, in place: a Glue database per zone, a table per table of a zone,
# and a workgroup for analysts.
#   - The tables' columns come from the contracts (modules/zone_tables reads them), never typed
#     here; tests/test_catalog.py checks them against the parquet files of a real run.
#   - Hive partitions are projected (partition projection): Athena derives a day's folder from
#     the query's filter, so a new day needs no crawler and no ALTER TABLE ... ADD PARTITION.
#   - The workgroup enforces its settings on every query: results encrypted with the stack's key
#     in their own bucket, and a limit on the bytes one query may scan.
#   - The analyst role may query through that workgroup only, and read the two zones only.

module "zone_tables" {
  source    = "./modules/zone_tables"
  repo_root = "${path.module}/.."
  zone_urls = { lake = local.lake_url, processed = local.processed_url }
  first_day = var.catalog_first_day

  # One entry per dataset of the lake. A table in a contract file needs none; a table written
  # without one is listed under glue_tables with its columns as Glue types.
  lake_datasets = {
    totesys = {
      contracts = ["ingestion/extract/contract.yml"]
      # ingestion/extract/source_keys.py (KEY_RANGES)
      glue_tables  = { source_keys = { source_table = "string", first_id = "bigint", last_id = "bigint" } }
      load_columns = { _lake_load_id = "string" }
    }
    fx = {
      # ingestion/extract/fx.py (the resource's columns); dlt adds its ids to rows it gets as dicts
      glue_tables  = { fx_rate = { rate_date = "date", currency_code = "string", units_per_gbp = "double" } }
      load_columns = { _lake_load_id = "string", _dlt_load_id = "string", _dlt_id = "string" }
    }
    deliveries = {
      # ingestion/extract/deliveries.py (EVENT_SCHEMA, REJECTED_SCHEMA)
      glue_tables = {
        delivery_event = {
          event_id         = "string"
          sales_order_id   = "bigint"
          event_type       = "string"
          event_at         = "timestamp"
          units            = "bigint"
          carrier          = "string"
          source_file      = "string"
          file_modified_at = "timestamp"
        }
        rejected_file = {
          source_file      = "string"
          file_modified_at = "timestamp"
          size_bytes       = "bigint"
          reason           = "string"
          content          = "binary"
        }
      }
      load_columns = { _lake_load_id = "string" }
    }
  }
  lake_partition = "load_date"                     # ingestion/lake/layout.py
  mart_files     = "models/marts/**/*__models.yml" # every mart's contract; new marts need nothing here
  exported_marts = "^(dim|fact)_|^deleted_rows$"   # ingestion/export/processed.py (star_tables)
  fact_partition = "last_updated_date"             # ingestion/export/processed.py (PARTITION_COLUMN)
}

locals {
  # Glue and Athena names: lower-case letters, digits and underscores
  catalog_prefix = replace(var.name, "-", "_")
  # "<zone>.<table>" -> the module's table, with its zone and name
  catalog_tables = merge([
    for zone, tables in module.zone_tables.tables : {
      for name, table in tables : "${zone}.${name}" => merge(table, { zone = zone, name = name })
    }
  ]...)
}

resource "aws_glue_catalog_database" "zone" {
  for_each = {
    lake      = "The landing zone: every version of every source row, as extracted, by load day"
    processed = "The star schema (dims, facts and deleted_rows) as exported after each run"
  }

  name        = "${local.catalog_prefix}_${each.key}"
  description = each.value
}

resource "aws_glue_catalog_table" "zone" {
  for_each = local.catalog_tables

  name          = each.value.name
  database_name = aws_glue_catalog_database.zone[each.value.zone].name
  description   = each.value.description
  table_type    = "EXTERNAL_TABLE"

  parameters = each.value.parameters # with the partition projection, if partitioned

  storage_descriptor {
    location      = each.value.location
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = each.value.columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment == "" ? null : columns.value.comment
      }
    }
  }

  dynamic "partition_keys" {
    for_each = each.value.partition_keys
    content {
      name    = partition_keys.value.name
      type    = partition_keys.value.type
      comment = partition_keys.value.comment == "" ? null : partition_keys.value.comment
    }
  }
}

# --- the workgroup and where its results go --------------------------------------------------

module "athena_results_bucket" {
  source = "./modules/private_bucket"

  name                    = "${var.name}-athena-${local.bucket_suffix}"
  kms_key_arn             = aws_kms_key.totes.arn
  force_destroy           = var.destroy_data_with_stack
  noncurrent_version_days = var.noncurrent_version_days
}

resource "aws_athena_workgroup" "analysts" {
  name          = "${var.name}-analysts"
  description   = "Queries over the ${var.name} lake and processed zones: encrypted results, a scan limit per query"
  force_destroy = var.destroy_data_with_stack # its saved queries and history go with the stack

  configuration {
    # a client cannot choose another results place, turn encryption off or lift the limit
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_scan_limit_mb * 1024 * 1024

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = "s3://${module.athena_results_bucket.bucket}/results/"
      expected_bucket_owner = local.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.totes.arn
      }
    }
  }
}

# --- the analyst role ------------------------------------------------------------------------

data "aws_iam_policy_document" "analyst_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type = "AWS"
      # the account's root means: any principal of this account whose own policy allows it
      identifiers = length(var.analyst_principals) > 0 ? var.analyst_principals : [
        "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"
      ]
    }
  }
}

resource "aws_iam_role" "analyst" {
  name               = "${var.name}-analyst"
  description        = "Query the ${var.name} zones with Athena, through the ${aws_athena_workgroup.analysts.name} workgroup only"
  assume_role_policy = data.aws_iam_policy_document.analyst_assume.json
}

locals {
  glue_arn = "arn:${data.aws_partition.current.partition}:glue:${var.region}:${local.account_id}"
}

data "aws_iam_policy_document" "analyst" {
  statement {
    sid = "QueryThroughTheWorkgroup"
    actions = [
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetQueryRuntimeStatistics",
      "athena:BatchGetQueryExecution",
      "athena:ListQueryExecutions",
      "athena:GetWorkGroup",
    ]
    resources = [aws_athena_workgroup.analysts.arn]
  }

  statement {
    sid = "BrowseTheCatalogInAthena"
    actions = [
      "athena:GetDataCatalog",
      "athena:ListDatabases",
      "athena:GetDatabase",
      "athena:ListTableMetadata",
      "athena:GetTableMetadata",
    ]
    resources = ["arn:${data.aws_partition.current.partition}:athena:${var.region}:${local.account_id}:datacatalog/AwsDataCatalog"]
  }

  statement {
    sid = "ReadTheZoneTables"
    actions = [
      "glue:GetDatabase",
      "glue:GetDatabases",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
    ]
    resources = [
      "${local.glue_arn}:catalog",
      "${local.glue_arn}:database/${aws_glue_catalog_database.zone["lake"].name}",
      "${local.glue_arn}:database/${aws_glue_catalog_database.zone["processed"].name}",
      "${local.glue_arn}:table/${aws_glue_catalog_database.zone["lake"].name}/*",
      "${local.glue_arn}:table/${aws_glue_catalog_database.zone["processed"].name}/*",
    ]
  }

  statement {
    sid     = "ListTheZones"
    actions = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [
      module.ingestion_bucket.arn,
      module.processed_bucket.arn,
    ]
  }

  statement {
    sid     = "ReadTheZones"
    actions = ["s3:GetObject"]
    resources = [
      "${module.ingestion_bucket.arn}/${local.lake_prefix}/*",
      "${module.processed_bucket.arn}/${local.processed_prefix}/*",
    ]
  }

  statement {
    sid = "WriteAndReadTheResults"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${module.athena_results_bucket.arn}/results/*"]
  }

  statement {
    sid       = "ListTheResults"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [module.athena_results_bucket.arn]
  }

  statement {
    sid       = "DecryptTheZonesAndEncryptTheResults"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.totes.arn]
  }
}

resource "aws_iam_role_policy" "analyst" {
  name   = "athena-analyst"
  role   = aws_iam_role.analyst.id
  policy = data.aws_iam_policy_document.analyst.json
}
