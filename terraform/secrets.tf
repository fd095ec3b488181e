# The two connection URLs (postgresql:// with user, password, host, port and database). Terraform creates the
# secrets but never their values (so no password is in state); set them once with
#   aws secretsmanager put-secret-value --secret-id <output source_url_secret> --secret-string '...'
# With create_warehouse_db, warehouse_db.tf writes the warehouse URL (write-only, not in state).

resource "aws_secretsmanager_secret" "source_url" {
  #checkov:skip=CKV2_AWS_57:the source is the company's database; its owners rotate the password and put the new URL here
  name                    = "${var.name}/source-url"
  description             = "TOTES_SOURCE_URL: the totesys database to copy from"
  kms_key_id              = aws_kms_key.totes.arn
  recovery_window_in_days = var.destroy_data_with_stack ? 0 : 7 # 0: a rebuilt stack reuses the name
}

resource "aws_secretsmanager_secret" "warehouse_url" {
  #checkov:skip=CKV2_AWS_57:rotated by raising warehouse_password_version (RDS) or by the warehouse's owners
  name                    = "${var.name}/warehouse-url"
  description             = "TOTES_WAREHOUSE_URL: the warehouse Postgres"
  kms_key_id              = aws_kms_key.totes.arn
  recovery_window_in_days = var.destroy_data_with_stack ? 0 : 7
}

# With payments_api: the bearer tokens the API accepts, separated by whitespace (two while
# clients move to a new one). The API reads them with its own role and rereads them every
# minute; put them with the command in the output payments_api_put_token_command.
resource "aws_secretsmanager_secret" "api_tokens" {
  #checkov:skip=CKV2_AWS_57:rotated by putting a new value (old and new tokens together while clients move); the API rereads it every minute, no redeploy
  count = var.payments_api ? 1 : 0

  name                    = "${var.name}/api-tokens"
  description             = "The bearer tokens the payments API accepts, separated by whitespace"
  kms_key_id              = aws_kms_key.totes.arn
  recovery_window_in_days = var.destroy_data_with_stack ? 0 : 7
}
