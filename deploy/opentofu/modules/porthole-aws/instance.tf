# The portholed instance, set up by cloud-init on its first boot
# (templates/bootstrap.sh): it formats and mounts the data volume, installs
# the .deb after checking its SHA-256 (the package starts nothing), runs
# portholed init with this install's flags when the volume holds no
# server yet, writes the config (templates/portholed.yaml.tftpl), lets the
# unit bind port 443, and only then enables and starts portholed. A
# replaced instance finds the server on the volume and starts it as it was.

resource "aws_eip" "server" {
  domain = "vpc"

  tags = merge(local.tags, { Name = "${var.name}-server" })
}

resource "aws_ebs_volume" "data" {
  availability_zone = local.azs[0]
  size              = var.data_volume_size
  type              = "gp3"
  encrypted         = true
  kms_key_id        = aws_kms_key.this.arn

  tags = merge(local.tags, { Name = "${var.name}-data" })
}

locals {
  database = var.rds ? join("", [
    "postgres://portholed@${aws_db_instance.this[0].address}:${aws_db_instance.this[0].port}/porthole",
    "?sslmode=verify-full&sslrootcert=/etc/portholed/rds-ca.pem&passfile=/etc/portholed/pgpass",
  ]) : "sqlite"

  portholed_yaml = templatefile("${path.module}/templates/portholed.yaml.tftpl", {
    host              = local.host
    database          = local.database
    iot_endpoint      = var.iot_core ? data.aws_iot_endpoint.data[0].endpoint_address : ""
    recordings        = "s3://${aws_s3_bucket.recordings.id}/recordings"
    recordings_region = local.region
  })

  # Sourced by bootstrap.sh; every value is checked by a variable's
  # validation or made by AWS, and holds no quote.
  bootstrap_env = join("", [for k, v in {
    PORTHOLE_DEB_URL        = var.portholed_deb_url
    PORTHOLE_DEB_SHA256     = var.portholed_deb_sha256
    PORTHOLE_DATA_VOLUME    = aws_ebs_volume.data.id
    PORTHOLE_ADMIN_EMAIL    = var.admin_email
    PORTHOLE_PUBLIC_URL     = local.server_url
    PORTHOLE_REGION         = local.region
    PORTHOLE_DB_HOST        = var.rds ? aws_db_instance.this[0].address : ""
    PORTHOLE_DB_PORT        = var.rds ? tostring(aws_db_instance.this[0].port) : ""
    PORTHOLE_DB_SECRET_ARN  = var.rds ? aws_db_instance.this[0].master_user_secret[0].secret_arn : ""
    PORTHOLE_IOT_SECRET_ARN = var.iot_core ? aws_secretsmanager_secret.iot_server[0].arn : ""
  } : "${k}='${v}'\n"])

  user_data = join("\n", ["#cloud-config", yamlencode({
    package_update = true
    packages       = ["ca-certificates", "curl", "python3", "postgresql-client"]
    write_files = [
      { path = "/etc/porthole-bootstrap/bootstrap.env", permissions = "0600", content = local.bootstrap_env },
      { path = "/etc/porthole-bootstrap/portholed.yaml", permissions = "0600", content = local.portholed_yaml },
      { path = "/usr/local/sbin/porthole-bootstrap", permissions = "0700", encoding = "b64", content = filebase64("${path.module}/templates/bootstrap.sh") },
    ]
    runcmd = [["/usr/local/sbin/porthole-bootstrap"]]
  })])
}

resource "aws_instance" "server" {
  ami                    = local.ami_id
  instance_type          = var.instance_type
  subnet_id              = aws_subnet.public[0].id
  vpc_security_group_ids = [aws_security_group.server.id]
  iam_instance_profile   = aws_iam_instance_profile.server.name
  ebs_optimized          = true
  monitoring             = true

  user_data                   = local.user_data
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = 16
    encrypted             = true
    kms_key_id            = aws_kms_key.this.arn
    delete_on_termination = true
  }

  tags = merge(local.tags, { Name = "${var.name}-server" })

  lifecycle {
    precondition {
      condition     = var.route53_zone_id == "" || var.domain_name != ""
      error_message = "route53_zone_id needs domain_name: the name of the record to make in that zone."
    }
  }

  # The first boot reads the secrets the role grants: let the grants exist.
  depends_on = [aws_iam_role_policy.server, aws_iam_role_policy_attachment.server_ssm]
}

resource "aws_volume_attachment" "data" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.server.id
}

resource "aws_eip_association" "server" {
  allocation_id = aws_eip.server.id
  instance_id   = aws_instance.server.id
}

resource "aws_route53_record" "server" {
  count = var.route53_zone_id != "" && var.domain_name != "" ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"
  ttl     = 300
  records = [aws_eip.server.public_ip]
}
