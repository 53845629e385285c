# Firewalls. The server's group opens one port to the world: 443, where
# portholed serves its API and pages, MQTT for devices and the relay, told
# apart by ALPN (package tlsmux). Nothing else comes in: no SSH (operators
# use Session Manager). Out, it may reach HTTPS (the package, AWS's APIs,
# S3), HTTP (Ubuntu's package mirrors), the database's port inside the
# VPC, and with IoT Core its MQTT port. The database's group takes
# PostgreSQL from the server's group alone and sends nothing.

resource "aws_security_group" "server" {
  name        = "${var.name}-server"
  description = "portholed: 443 in (API, MQTT and relay by ALPN)"
  vpc_id      = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-server" })
}

resource "aws_vpc_security_group_ingress_rule" "server_https" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = aws_security_group.server.id
  description       = "portholed: API, devices' MQTT and the relay (ALPN)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value

  tags = local.tags
}

# Out to HTTPS and HTTP: egress_cidrs, by default anywhere, since the
# package's URL, AWS's APIs and Ubuntu's mirrors have no fixed addresses
# (a deployment with VPC endpoints and a proxy can narrow it). Scanners
# flag that (trivy AWS-0104); it is accepted here, for that reason.
resource "aws_vpc_security_group_egress_rule" "server_https" {
  for_each = toset(var.egress_cidrs)

  security_group_id = aws_security_group.server.id
  description       = "the package, AWS APIs (S3, Secrets Manager, SSM), RDS's CA bundle"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  #trivy:ignore:AWS-0104
  cidr_ipv4 = each.value

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "server_http" {
  for_each = toset(var.egress_cidrs)

  security_group_id = aws_security_group.server.id
  description       = "Ubuntu's package mirrors (signed packages over HTTP)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  #trivy:ignore:AWS-0104
  cidr_ipv4 = each.value

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "server_mqtt" {
  for_each = var.iot_core ? toset(var.egress_cidrs) : toset([])

  security_group_id = aws_security_group.server.id
  description       = "AWS IoT Core's MQTT over TLS"
  ip_protocol       = "tcp"
  from_port         = 8883
  to_port           = 8883
  #trivy:ignore:AWS-0104
  cidr_ipv4 = each.value

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "server_postgres" {
  count = var.rds ? 1 : 0

  security_group_id            = aws_security_group.server.id
  description                  = "PostgreSQL on RDS"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database[0].id

  tags = local.tags
}

resource "aws_security_group" "database" {
  count = var.rds ? 1 : 0

  name        = "${var.name}-database"
  description = "PostgreSQL: from the portholed server only"
  vpc_id      = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-database" })
}

resource "aws_vpc_security_group_ingress_rule" "database_from_server" {
  count = var.rds ? 1 : 0

  security_group_id            = aws_security_group.database[0].id
  description                  = "PostgreSQL from portholed"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.server.id

  tags = local.tags
}
