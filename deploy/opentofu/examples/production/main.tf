# A production install of Porthole on AWS with the module of
# ../../modules/porthole-aws: copy this directory, fill in
# terraform.tfvars (see terraform.tfvars.example), keep the state in a
# backend of your own (it holds the IoT server key, when iot_core is on),
# then: tofu init && tofu apply (or terraform init && terraform apply).

terraform {
  required_version = ">= 1.8"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7.0"
    }
  }

  # backend "s3" {
  #   bucket       = "example-tofu-state"
  #   key          = "porthole/production.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = { Project = "porthole", Environment = "production" }
  }
}

module "porthole" {
  source = "../../modules/porthole-aws"

  name                 = "porthole-prod"
  admin_email          = var.admin_email
  portholed_deb_url    = var.portholed_deb_url
  portholed_deb_sha256 = var.portholed_deb_sha256
  domain_name          = var.domain_name
  route53_zone_id      = var.route53_zone_id

  # Graviton, with the arm64 package.
  instance_type = "t4g.small"
  architecture  = "arm64"

  rds               = true
  db_instance_class = "db.t4g.small"
  db_multi_az       = true

  iot_core = var.iot_core
}

variable "region" {
  description = "The AWS region to install in."
  type        = string
  default     = "eu-west-1"
}

variable "admin_email" {
  description = "The first administrator's login."
  type        = string
}

variable "portholed_deb_url" {
  description = "https:// URL of the portholed arm64 .deb of the release to install."
  type        = string
}

variable "portholed_deb_sha256" {
  description = "Its SHA-256, from the release's SHA256SUMS."
  type        = string
}

variable "domain_name" {
  description = "The server's name, such as porthole.example.com; empty: the Elastic IP's AWS name."
  type        = string
  default     = ""
}

variable "route53_zone_id" {
  description = "The Route 53 zone of domain_name, to make its record; empty: make it yourself."
  type        = string
  default     = ""
}

variable "iot_core" {
  description = "AWS IoT Core as the control channel instead of the embedded broker."
  type        = bool
  default     = false
}

output "server_url" {
  description = "The server's URL."
  value       = module.porthole.server_url
}

output "admin_credentials_command" {
  description = "Shows the first administrator's password and TOTP secret, once."
  value       = module.porthole.admin_credentials_command
}

output "first_enrollment_command" {
  description = "Enrolls the first device."
  value       = module.porthole.first_enrollment_command
}

output "instance_id" {
  description = "The instance, for Session Manager."
  value       = module.porthole.instance_id
}
