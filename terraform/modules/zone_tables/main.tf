# The Glue tables of the two zones, read from the files that define them: the lake's from the
# source contracts (plus the columns the lake adds to every row), the processed zone's from the
# enforced dbt contracts of the marts the export writes. No column is typed here. Every hive
# partition is a day folder, projected by Athena (no crawler, no ALTER TABLE ADD PARTITION).
# The module needs no provider: tests/test_catalog.py applies it alone, and compares its tables
# with the parquet files of a real run.

variable "zone_urls" {
  description = "Where each zone lies, as s3://bucket/prefix: {lake = ..., processed = ...}."
  type        = object({ lake = string, processed = string })
}

variable "first_day" {
  description = "The first day (yyyy-MM-dd) partitions are projected for."
  type        = string
}

variable "repo_root" {
  description = "The repository's root folder, which every path below is relative to."
  type        = string
}

variable "lake_datasets" {
  description = "The lake's datasets (<lake>/<dataset>/<table>/): contract files (tables: {table: {column: Postgres type}}), tables written without one (glue_tables: {table: {column: Glue type}}), and the columns the lake adds to each table of the dataset (load_columns: {column: Glue type})."
  type = map(object({
    contracts    = optional(list(string), [])
    glue_tables  = optional(map(map(string)), {})
    load_columns = map(string)
  }))
}

variable "lake_partition" {
  description = "The hive partition of every lake table (<table>/<partition>=YYYY-MM-DD/)."
  type        = string
}

variable "mart_files" {
  description = "Glob of the dbt yml files that hold the marts' contracts, under repo_root."
  type        = string
}

variable "exported_marts" {
  description = "Regex of the names of the marts the export writes to the processed zone (the ones with an enforced contract)."
  type        = string
}

variable "fact_partition" {
  description = "The hive partition of the facts (the marts with a *_record_id column) in the processed zone."
  type        = string
}

locals {
  # A Postgres type (its parameters and case dropped) -> the Glue type Athena reads the parquet
  # column as. Both writers (dlt's arrow backend, the export's COPY) write every integer as int64.
  # Athena tables have no TIME type: a time column is read as bigint, microseconds after midnight.
  glue_types = {
    "smallint"                    = "bigint"
    "integer"                     = "bigint"
    "bigint"                      = "bigint"
    "boolean"                     = "boolean"
    "numeric"                     = "decimal" # with the column's (precision,scale)
    "double precision"            = "double"
    "text"                        = "string"
    "character varying"           = "string"
    "varchar"                     = "string"
    "jsonb"                       = "string"
    "bytea"                       = "binary"
    "date"                        = "date"
    "timestamp"                   = "timestamp"
    "timestamp without time zone" = "timestamp"
    "timestamp with time zone"    = "timestamp"
    "time"                        = "bigint"
    "time without time zone"      = "bigint"
    "\"paymenttypename\""         = "string" # totesys's enums arrive as strings
    "\"transactiontype\""         = "string"
  }

  # <dataset>__<table> -> where it lies, its columns ({name: Postgres type} from a contract, or
  # {name: Glue type}) and the columns the lake adds
  lake_contracts = merge(flatten([
    for dataset, spec in var.lake_datasets : [
      for file in spec.contracts : {
        for table, columns in yamldecode(file("${var.repo_root}/${file}")).tables :
        "${dataset}__${table}" => { path = "${dataset}/${table}", columns = columns, added = spec.load_columns }
      }
    ]
  ])...)
  lake_glue_tables = merge([
    for dataset, spec in var.lake_datasets : {
      for table, columns in spec.glue_tables :
      "${dataset}__${table}" => { path = "${dataset}/${table}", columns = columns, added = spec.load_columns }
    }
  ]...)

  # every exported mart with its enforced contract, in the order of the yml files
  marts = [
    for model in flatten([
      for file in sort(fileset(var.repo_root, var.mart_files)) :
      try(yamldecode(file("${var.repo_root}/${file}")).models, [])
    ]) : model
    if can(regex(var.exported_marts, model.name)) && try(model.config.contract.enforced, false)
  ]
  facts = toset([
    for mart in local.marts : mart.name
    if anytrue([for column in mart.columns : endswith(column.name, "_record_id")])
  ])

  postgres_types = toset(concat(
    flatten([for table in values(local.lake_contracts) : values(table.columns)]),
    flatten([for mart in local.marts : [for column in mart.columns : column.data_type]]),
  ))
  # "numeric(18, 6)" -> "decimal(18,6)"; "timestamp(3) without time zone" -> "timestamp"
  glue_type = {
    for type in local.postgres_types : type => (
      lookup(local.glue_types, trimspace(replace(lower(type), "/\\(.*?\\)/", "")), null) == "decimal"
      ? "decimal${replace(try(regex("\\(.*\\)", type), ""), " ", "")}"
      : lookup(local.glue_types, trimspace(replace(lower(type), "/\\(.*?\\)/", "")), null)
    )
  }
  unknown_types = sort([for type, glue in local.glue_type : type if glue == null])
}

locals {
  lake_table = "in the landing zone, append-only: every row of every load, by the load's day"
  load_day   = { name = var.lake_partition, type = "string", comment = "The day (UTC) of the lake load that wrote the row." }
  # zone -> Glue table name -> its path under the zone, description, columns, partition keys
  zones = {
    lake = merge(
      {
        for name, table in local.lake_contracts : name => {
          path        = table.path
          description = "${table.path} ${local.lake_table}."
          columns = concat(
            [for column, type in table.columns : { name = column, type = local.glue_type[type], comment = "" }],
            [for column, type in table.added : { name = column, type = type, comment = "" }],
          )
          partition_keys = [local.load_day]
        }
      },
      {
        for name, table in local.lake_glue_tables : name => {
          path        = table.path
          description = "${table.path} ${local.lake_table}."
          columns = concat(
            [for column, type in table.columns : { name = column, type = type, comment = "" }],
            [for column, type in table.added : { name = column, type = type, comment = "" }],
          )
          partition_keys = [local.load_day]
        }
      },
    )
    processed = {
      for mart in local.marts : mart.name => {
        path        = mart.name
        description = substr(trimspace(try(mart.description, "")), 0, 2048)
        columns = [
          for column in mart.columns : {
            name    = column.name
            type    = local.glue_type[column.data_type]
            comment = substr(trimspace(try(column.description, "")), 0, 255)
          }
          if !(contains(local.facts, mart.name) && column.name == var.fact_partition)
        ]
        partition_keys = [
          for column in mart.columns : {
            name    = column.name
            type    = "string" # yyyy-MM-dd: compare with '2024-01-31', which keeps the pruning
            comment = substr(trimspace(try(column.description, "")), 0, 255)
          }
          if contains(local.facts, mart.name) && column.name == var.fact_partition
        ]
      }
    }
  }
}

output "tables" {
  description = "Zone (lake, processed) -> Glue table name -> {path (under the zone), location, description, columns and partition_keys ([{name, type, comment}]), parameters (the table's, with its partition projection)}."
  value = {
    for zone, tables in local.zones : zone => {
      for name, table in tables : name => merge(table, {
        location = "${var.zone_urls[zone]}/${table.path}/"
        parameters = merge(
          { EXTERNAL = "TRUE", classification = "parquet" },
          # each partition a day folder <key>=yyyy-MM-dd, projected from first_day to today
          length(table.partition_keys) == 0 ? {} : merge(
            {
              "projection.enabled" = "true"
              "storage.location.template" = join("/", concat(
                ["${var.zone_urls[zone]}/${table.path}"],
                [for key in table.partition_keys : "${key.name}=$${${key.name}}"],
                [""],
              ))
            },
            [
              for key in table.partition_keys : {
                "projection.${key.name}.type"          = "date"
                "projection.${key.name}.format"        = "yyyy-MM-dd"
                "projection.${key.name}.range"         = "${var.first_day},NOW"
                "projection.${key.name}.interval"      = "1"
                "projection.${key.name}.interval.unit" = "DAYS"
              }
            ]...
          ),
        )
      })
    }
  }

  precondition {
    condition     = length(local.unknown_types) == 0
    error_message = "No Glue type for the Postgres type(s) ${join(", ", local.unknown_types)}: add each to glue_types in terraform/modules/zone_tables/main.tf, as the type Athena reads its parquet column as."
  }
}
