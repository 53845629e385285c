# The module planned and applied against a mock AWS provider (tofu test or
# terraform test; nothing reaches AWS): its choices (counts, rules,
# user data) are checked here for each mode, and its validations refuse
# bad input. See ../../../README.md.

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { id = "eu-west-1", name = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"] }
  }
  mock_data "aws_ssm_parameter" {
    defaults = { value = "ami-0123456789abcdef0" }
  }
  mock_data "aws_iot_endpoint" {
    defaults = { endpoint_address = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com" }
  }
  mock_data "aws_iot_registration_code" {
    defaults = { registration_code = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/porthole-test" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/porthole/porthole-test/vpc-flow-logs" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::porthole-test-recordings-123456789012", id = "porthole-test-recordings-123456789012" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:porthole-test/iot-server-certificate-AbCdEf" }
  }
  mock_resource "aws_iot_certificate" {
    defaults = { arn = "arn:aws:iot:eu-west-1:123456789012:cert/0123456789abcdef" }
  }
  mock_resource "aws_eip" {
    defaults = { public_ip = "203.0.113.7", public_dns = "ec2-203-0-113-7.eu-west-1.compute.amazonaws.com" }
  }
  mock_resource "aws_ebs_volume" {
    defaults = { id = "vol-0123456789abcdef0" }
  }
  mock_resource "aws_db_instance" {
    defaults = {
      address            = "porthole-test.abcdefghijkl.eu-west-1.rds.amazonaws.com"
      port               = 5432
      endpoint           = "porthole-test.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432"
      master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf", kms_key_id = "", secret_status = "active" }]
    }
  }
}

variables {
  name                 = "porthole-test"
  admin_email          = "ops@example.com"
  portholed_deb_url    = "https://downloads.example.com/porthole/1.2.0/portholed_1.2.0-1_arm64.deb"
  portholed_deb_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
}

run "defaults_rds_embedded_broker" {
  command = apply

  assert {
    condition     = output.server_url == "https://ec2-203-0-113-7.eu-west-1.compute.amazonaws.com"
    error_message = "without domain_name, the server URL is the Elastic IP's name on 443: ${output.server_url}"
  }
  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.server_https) == 1 && alltrue([for r in aws_vpc_security_group_ingress_rule.server_https : r.from_port == 443 && r.to_port == 443 && r.ip_protocol == "tcp"])
    error_message = "the server takes 443 alone"
  }
  assert {
    condition     = length(aws_db_instance.this) == 1 && !aws_db_instance.this[0].publicly_accessible && aws_db_instance.this[0].storage_encrypted && aws_db_instance.this[0].manage_master_user_password
    error_message = "RDS: private, encrypted, its password managed by RDS"
  }
  assert {
    condition     = !aws_db_instance.this[0].performance_insights_enabled
    error_message = "db.t4g.small has no Performance Insights"
  }
  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.database_from_server) == 1 && aws_vpc_security_group_ingress_rule.database_from_server[0].from_port == 5432
    error_message = "the database takes 5432 from the server's group"
  }
  assert {
    condition     = strcontains(aws_instance.server.user_data, "listen: \":443\"") && strcontains(aws_instance.server.user_data, "aws_role: true") && strcontains(aws_instance.server.user_data, "postgres://portholed@porthole-test.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432/porthole?sslmode=verify-full")
    error_message = "the config cloud-init writes listens on 443, signs S3 with the role, and names RDS with TLS verified"
  }
  assert {
    condition     = strcontains(aws_instance.server.user_data, "PORTHOLE_DB_SECRET_ARN='arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf'") && strcontains(aws_instance.server.user_data, "PORTHOLE_IOT_SECRET_ARN=''")
    error_message = "the first boot is told RDS's master secret and no IoT secret"
  }
  assert {
    condition     = aws_instance.server.metadata_options[0].http_tokens == "required" && aws_instance.server.root_block_device[0].encrypted && aws_ebs_volume.data.encrypted
    error_message = "IMDSv2 only, encrypted volumes"
  }
  assert {
    condition     = length(aws_iot_policy.device) == 0 && length(aws_vpc_security_group_egress_rule.server_mqtt) == 0
    error_message = "no IoT Core without iot_core"
  }
  assert {
    condition     = strcontains(output.first_enrollment_command, "porthole-agent enroll --server https://ec2-203-0-113-7.eu-west-1.compute.amazonaws.com --token")
    error_message = "the enrollment command names the server"
  }
}

run "sqlite_iot_core_own_domain" {
  command = apply

  variables {
    rds                                 = false
    iot_core                            = true
    domain_name                         = "porthole.example.com"
    route53_zone_id                     = "Z0123456789ABCDEFGHIJ"
    allowed_cidrs                       = ["198.51.100.0/24", "203.0.113.0/24"]
    iot_ca_certificate_pem              = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    iot_ca_verification_certificate_pem = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
  }

  assert {
    condition     = output.server_url == "https://porthole.example.com" && aws_route53_record.server[0].records == toset(["203.0.113.7"])
    error_message = "domain_name is the server's URL, and its record points at the Elastic IP"
  }
  assert {
    condition     = length(aws_db_instance.this) == 0 && length(aws_security_group.database) == 0 && strcontains(aws_instance.server.user_data, "database: \"sqlite\"")
    error_message = "rds = false: SQLite on the data volume, no database group"
  }
  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.server_https) == 2 && length(aws_vpc_security_group_egress_rule.server_mqtt) == 1 && length(aws_vpc_security_group_egress_rule.server_https) == 1
    error_message = "443 from each allowed range; out to IoT Core's 8883"
  }
  assert {
    condition     = strcontains(aws_instance.server.user_data, "url: mqtts://a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com:8883")
    error_message = "the config names IoT Core as the broker"
  }
  assert {
    condition     = strcontains(aws_iot_policy.device[0].policy, "arn:aws:iot:eu-west-1:123456789012:topic/porthole/v1/$${iot:Certificate.Subject.CommonName}/state") && !strcontains(aws_iot_policy.server[0].policy, "ACCOUNT_ID")
    error_message = "deploy/aws-iot's policies, with the account and region filled in"
  }
  assert {
    condition     = aws_iot_ca_certificate.devices[0].allow_auto_registration && strcontains(aws_iot_ca_certificate.devices[0].registration_config[0].template_body, "porthole-test-device")
    error_message = "the device CA provisions devices with the device policy"
  }
}

run "refuses_bad_input" {
  command = plan

  variables {
    name                 = "Porthole_Prod"
    admin_email          = "nobody"
    portholed_deb_url    = "http://downloads.example.com/portholed.deb"
    portholed_deb_sha256 = "abc"
    allowed_cidrs        = ["everyone"]
  }

  expect_failures = [
    var.name,
    var.admin_email,
    var.portholed_deb_url,
    var.portholed_deb_sha256,
    var.allowed_cidrs,
  ]
}

run "refuses_a_ca_without_its_verification" {
  command = plan

  variables {
    iot_core               = true
    iot_ca_certificate_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
  }

  expect_failures = [aws_iot_ca_certificate.devices]
}
