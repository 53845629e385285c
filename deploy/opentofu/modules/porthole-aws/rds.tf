# PostgreSQL on RDS (var.rds): in the private subnets, reachable from the
# server's group alone, encrypted with the install's key, TLS enforced.
# Its master password is made and kept by RDS in Secrets Manager (never in
# the state) and rotated there; on its first boot the instance uses it once
# to make portholed's own role, with a password only the instance knows
# (templates/bootstrap.sh), so a rotation never stops the server.

resource "aws_db_subnet_group" "this" {
  count = var.rds ? 1 : 0

  name       = var.name
  subnet_ids = aws_subnet.private[*].id

  tags = merge(local.tags, { Name = var.name })
}

resource "aws_db_parameter_group" "this" {
  count = var.rds ? 1 : 0

  name   = "${var.name}-postgres${var.db_engine_version}"
  family = "postgres${var.db_engine_version}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  tags = local.tags
}

locals {
  db_insights = !can(regex("\\.(micro|small)$", var.db_instance_class))
}

resource "aws_db_instance" "this" {
  count = var.rds ? 1 : 0

  identifier     = var.name
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name                       = "porthole"
  username                      = "porthole_admin"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.this.arn

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_allocated_storage * 10
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  db_subnet_group_name   = aws_db_subnet_group.this[0].name
  vpc_security_group_ids = [aws_security_group.database[0].id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az
  parameter_group_name   = aws_db_parameter_group.this[0].name

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  backup_retention_period             = var.db_backup_retention_days
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = !var.deletion_protection
  final_snapshot_identifier           = "${var.name}-final"
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]

  # Performance Insights, on the classes that have it (not micro or small).
  performance_insights_enabled    = local.db_insights
  performance_insights_kms_key_id = local.db_insights ? aws_kms_key.this.arn : null

  tags = merge(local.tags, { Name = var.name })

  depends_on = [aws_cloudwatch_log_group.database]
}

# The database's logs, made before RDS would make them, to keep them
# encrypted and for log_retention_days rather than forever.
resource "aws_cloudwatch_log_group" "database" {
  for_each = var.rds ? toset(["postgresql", "upgrade"]) : toset([])

  name              = "/aws/rds/instance/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn

  tags = local.tags
}
