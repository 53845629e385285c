# Porthole on AWS: one portholed instance behind port 443 alone, its keys on
# an encrypted volume that outlives it, PostgreSQL on RDS (optional), the
# recordings in S3, and AWS IoT Core as the control channel (optional).
# ../../README.md says what each part does and how to reach the instance.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

# Canonical's current Ubuntu 24.04 LTS image, unless ami_id names one.
data "aws_ssm_parameter" "ubuntu" {
  count = var.ami_id == "" ? 1 : 0
  name  = "/aws/service/canonical/ubuntu/server/24.04/stable/current/${var.architecture}/hvm/ebs-gp3/ami-id"
}

locals {
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(data.aws_availability_zones.available.names, 0, 2)

  tags = merge(var.tags, { "porthole:install" = var.name })

  ami_id = var.ami_id != "" ? var.ami_id : nonsensitive(data.aws_ssm_parameter.ubuntu[0].value)

  # The name devices and engineers reach the server by, on port 443 alone.
  host       = var.domain_name != "" ? var.domain_name : aws_eip.server.public_dns
  server_url = "https://${local.host}"

  recordings_bucket = var.recordings_bucket_name != "" ? var.recordings_bucket_name : "${var.name}-recordings-${local.account_id}"
}
