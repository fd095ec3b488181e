# Optional: a small RDS PostgreSQL as the warehouse, for users who have none
# (create_warehouse_db = true). Its password is generated at apply time and written only to
# the database and to the warehouse secret, through write-only arguments: never to state.

ephemeral "random_password" "warehouse" {
  count = var.create_warehouse_db ? 1 : 0

  length  = 40
  special = false # totes and dbt read it from a URL: letters and digits need no escaping
}

resource "aws_db_subnet_group" "warehouse" {
  count = var.create_warehouse_db ? 1 : 0

  name       = "${var.name}-warehouse"
  subnet_ids = local.subnet_ids
}

resource "aws_security_group" "warehouse" {
  count = var.create_warehouse_db ? 1 : 0

  name        = "${var.name}-warehouse"
  description = "The warehouse database: Postgres from the pipeline task only"
  vpc_id      = data.aws_vpc.selected.id
}

resource "aws_vpc_security_group_ingress_rule" "warehouse_from_task" {
  count = var.create_warehouse_db ? 1 : 0

  security_group_id            = aws_security_group.warehouse[0].id
  description                  = "Postgres from the pipeline task"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.task.id
}

resource "aws_db_instance" "warehouse" {
  #checkov:skip=CKV_AWS_157:one zone is enough for a warehouse rebuilt from the lake by `totes rebuild`; Multi-AZ doubles the cost
  #checkov:skip=CKV_AWS_118:enhanced monitoring costs extra; CloudWatch's basic RDS metrics and the pipeline's own metrics suffice
  #checkov:skip=CKV_AWS_353:one dbt build at a time writes this warehouse, and ops.dbt_node_results already times every model
  #checkov:skip=CKV_AWS_354:Performance Insights is off (above)
  #checkov:skip=CKV_AWS_293:make destroy must be able to remove the sandbox; deletion follows destroy_data_with_stack
  #checkov:skip=CKV2_AWS_30:query logging would log every dbt statement; errors are logged (log exports below)
  count = var.create_warehouse_db ? 1 : 0

  identifier     = "${var.name}-warehouse"
  engine         = "postgres"
  engine_version = "16"
  instance_class = var.warehouse_db_instance_class
  db_name        = "warehouse"
  username       = "totes"

  password_wo         = ephemeral.random_password.warehouse[0].result
  password_wo_version = var.warehouse_password_version

  allocated_storage     = 20
  max_allocated_storage = 100
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.totes.arn

  db_subnet_group_name                = aws_db_subnet_group.warehouse[0].name
  vpc_security_group_ids              = [aws_security_group.warehouse[0].id]
  publicly_accessible                 = false
  iam_database_authentication_enabled = true

  backup_retention_period         = 7
  copy_tags_to_snapshot           = true
  auto_minor_version_upgrade      = true
  enabled_cloudwatch_logs_exports = ["postgresql"]
  deletion_protection             = !var.destroy_data_with_stack
  skip_final_snapshot             = var.destroy_data_with_stack
  final_snapshot_identifier       = var.destroy_data_with_stack ? null : "${var.name}-warehouse-final"
}

resource "aws_secretsmanager_secret_version" "warehouse_url" {
  count = var.create_warehouse_db ? 1 : 0

  secret_id = aws_secretsmanager_secret.warehouse_url.id
  # RDS for PostgreSQL 15+ requires TLS
  secret_string_wo = format(
    #checkov:skip=CKV_SECRET_4:a URL template; the password is the ephemeral value, in no file
    "postgresql://%s:%s@%s:%d/%s?sslmode=require",
    aws_db_instance.warehouse[0].username,
    ephemeral.random_password.warehouse[0].result,
    aws_db_instance.warehouse[0].address,
    aws_db_instance.warehouse[0].port,
    aws_db_instance.warehouse[0].db_name,
  )
  secret_string_wo_version = var.warehouse_password_version
}
