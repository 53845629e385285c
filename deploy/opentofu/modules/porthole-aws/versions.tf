# Works with OpenTofu 1.8 and later and with Terraform 1.8 and later; checked
# with OpenTofu 1.12 and Terraform 1.11 against the AWS provider 5.100
# (see ../../README.md for what was checked how).
terraform {
  required_version = ">= 1.8"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7.0"
    }
  }
}
