# AWS IoT Core as the control channel (var.iot_core). The policies are
# deploy/aws-iot's, with this account and region filled in: a device may
# use only its own topics, named by its certificate's common name
# <fleet>/<device>; the server publishes commands and reads states. The
# server's certificate is made by AWS IoT (its key is kept in Secrets
# Manager for the instance, and in this state: keep the state safe). With
# iot_ca_certificate_pem, the CA that signs device certificates is
# registered, and a device's first connection provisions it just in time:
# its certificate activated, the device policy attached, and a thing made
# for it, named <fleet>_<device> (a thing name cannot hold "/").

locals {
  iot_policy_dir = "${path.module}/../../../aws-iot"
}

data "aws_iot_endpoint" "data" {
  count         = var.iot_core ? 1 : 0
  endpoint_type = "iot:Data-ATS"
}

resource "aws_iot_policy" "device" {
  count = var.iot_core ? 1 : 0

  name = "${var.name}-device"
  policy = replace(replace(file("${local.iot_policy_dir}/device-policy.json"),
  "REGION", local.region), "ACCOUNT_ID", local.account_id)

  tags = local.tags
}

resource "aws_iot_policy" "server" {
  count = var.iot_core ? 1 : 0

  name = "${var.name}-server"
  policy = replace(replace(file("${local.iot_policy_dir}/server-policy.json"),
  "REGION", local.region), "ACCOUNT_ID", local.account_id)

  tags = local.tags
}

resource "aws_iot_certificate" "server" {
  count  = var.iot_core ? 1 : 0
  active = true
}

resource "aws_iot_policy_attachment" "server" {
  count  = var.iot_core ? 1 : 0
  policy = aws_iot_policy.server[0].name
  target = aws_iot_certificate.server[0].arn
}

resource "aws_secretsmanager_secret" "iot_server" {
  count = var.iot_core ? 1 : 0

  name                    = "${var.name}/iot-server-certificate"
  description             = "Porthole ${var.name}: portholed's certificate and key for AWS IoT Core"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7

  tags = local.tags
}

resource "aws_secretsmanager_secret_version" "iot_server" {
  count = var.iot_core ? 1 : 0

  secret_id = aws_secretsmanager_secret.iot_server[0].id
  secret_string = jsonencode({
    certificate = aws_iot_certificate.server[0].certificate_pem
    key         = aws_iot_certificate.server[0].private_key
  })
}

# The code a CA's verification certificate must name as its common name
# (output iot_registration_code): apply once with iot_core, sign it, then
# again with the CA.
data "aws_iot_registration_code" "this" {
  count = var.iot_core ? 1 : 0
}

# Just-in-time provisioning of devices whose certificate the registered CA
# signed.
resource "aws_iot_ca_certificate" "devices" {
  count = var.iot_core && var.iot_ca_certificate_pem != "" ? 1 : 0

  active                       = true
  allow_auto_registration      = true
  ca_certificate_pem           = var.iot_ca_certificate_pem
  verification_certificate_pem = var.iot_ca_verification_certificate_pem
  certificate_mode             = "DEFAULT"

  registration_config {
    role_arn = aws_iam_role.iot_provisioning[0].arn
    template_body = jsonencode({
      Parameters = {
        "AWS::IoT::Certificate::CommonName" = { Type = "String" }
        "AWS::IoT::Certificate::Id"         = { Type = "String" }
      }
      Resources = {
        thing = {
          Type = "AWS::IoT::Thing"
          Properties = {
            ThingName = { "Fn::Join" = ["_", { "Fn::Split" = ["/", { Ref = "AWS::IoT::Certificate::CommonName" }] }] }
            AttributePayload = {
              porthole = "device"
            }
          }
        }
        certificate = {
          Type = "AWS::IoT::Certificate"
          Properties = {
            CertificateId = { Ref = "AWS::IoT::Certificate::Id" }
            Status        = "ACTIVE"
          }
        }
        policy = {
          Type       = "AWS::IoT::Policy"
          Properties = { PolicyName = aws_iot_policy.device[0].name }
        }
      }
    })
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.iot_ca_verification_certificate_pem != ""
      error_message = "iot_ca_certificate_pem needs iot_ca_verification_certificate_pem: a certificate your CA signed for the registration code (output iot_registration_code), which proves you hold the CA's key."
    }
  }
}

resource "aws_iam_role" "iot_provisioning" {
  count = var.iot_core && var.iot_ca_certificate_pem != "" ? 1 : 0

  name = "${var.name}-iot-provisioning"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "iot.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "iot_provisioning" {
  count = var.iot_core && var.iot_ca_certificate_pem != "" ? 1 : 0

  role       = aws_iam_role.iot_provisioning[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSIoTThingsRegistration"
}
