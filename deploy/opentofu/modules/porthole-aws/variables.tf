# The module's inputs. Only name, admin_email and the package (portholed_deb_url
# and portholed_deb_sha256) must be given; every other has a production
# default.

variable "name" {
  description = "Prefix of every resource's name and its Name tag, such as porthole-prod."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name))
    error_message = "name must be 3 to 24 of a-z, 0-9 and -, starting with a letter: it prefixes the bucket's, the database's and the roles' names."
  }
}

variable "tags" {
  description = "Tags on every resource, beside Name."
  type        = map(string)
  default     = {}
}

variable "admin_email" {
  description = "The first administrator's login, given to portholed init. Its password and TOTP secret are written, once, to /root/portholed-init.txt on the instance (read it through Session Manager)."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s'\"]+@[^@\\s'\"]+\\.[^@\\s'\"]+$", var.admin_email))
    error_message = "admin_email must be an email address."
  }
}

variable "portholed_deb_url" {
  description = "https:// URL of the portholed .deb for the instance's architecture (make packages or make release), such as https://downloads.example.com/porthole/1.2.0/portholed_1.2.0-1_arm64.deb."
  type        = string

  validation {
    condition     = can(regex("^https://[^\\s'\"]+\\.deb$", var.portholed_deb_url))
    error_message = "portholed_deb_url must be an https:// URL ending in .deb."
  }
}

variable "portholed_deb_sha256" {
  description = "The .deb's SHA-256 (from the release's SHA256SUMS): cloud-init installs nothing else."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.portholed_deb_sha256))
    error_message = "portholed_deb_sha256 must be 64 lowercase hexadecimal digits."
  }
}

variable "domain_name" {
  description = "The server's DNS name, such as porthole.example.com, in its public URL and certificate. Empty: the Elastic IP's public DNS name (ec2-...amazonaws.com). With route53_zone_id, an A record is made for it."
  type        = string
  default     = ""

  validation {
    condition     = var.domain_name == "" || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be a lowercase DNS name such as porthole.example.com, or empty."
  }
}

variable "route53_zone_id" {
  description = "A Route 53 hosted zone in which to make domain_name's A record. Empty: make the record yourself."
  type        = string
  default     = ""

  validation {
    condition     = var.route53_zone_id == "" || can(regex("^Z[A-Z0-9]{1,31}$", var.route53_zone_id))
    error_message = "route53_zone_id must be a hosted zone ID such as Z0123456789ABCDEFGHIJ, or empty."
  }
}

variable "allowed_cidrs" {
  description = "IPv4 ranges that may reach port 443, the only port open: devices, engineers and owners' pages. Default: everyone."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrnetmask(c))])
    error_message = "allowed_cidrs must be a non-empty list of IPv4 CIDR blocks such as 0.0.0.0/0 or 203.0.113.0/24."
  }
}

variable "egress_cidrs" {
  description = "IPv4 ranges the server may reach on 443 and 80 (and 8883 with iot_core): the package's URL, AWS's APIs, Ubuntu's mirrors, IoT Core. Default: anywhere, since none has fixed addresses; narrow it behind VPC endpoints and a proxy of your own."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.egress_cidrs) > 0 && alltrue([for c in var.egress_cidrs : can(cidrnetmask(c))])
    error_message = "egress_cidrs must be a non-empty list of IPv4 CIDR blocks."
  }
}

variable "vpc_cidr" {
  description = "The VPC's IPv4 range; the module cuts four /24 (or smaller) subnets from it, two public (the instance) and two private (the database) in two availability zones."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 24 && tonumber(split("/", var.vpc_cidr)[1]) >= 16
    error_message = "vpc_cidr must be an IPv4 CIDR block from /16 to /24."
  }
}

variable "instance_type" {
  description = "The portholed instance's type. Graviton (arm64, like the default) needs the arm64 .deb; x86 types the amd64 one."
  type        = string
  default     = "t4g.small"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be an EC2 instance type such as t4g.small or m7i.large."
  }
}

variable "ami_id" {
  description = "The instance's image. Empty: the current Ubuntu 24.04 LTS for the instance type's architecture, from Canonical's public SSM parameter (it ships cloud-init and the SSM agent)."
  type        = string
  default     = ""

  validation {
    condition     = var.ami_id == "" || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be an AMI ID such as ami-0123456789abcdef0, or empty."
  }
}

variable "architecture" {
  description = "arm64 or amd64: the instance type's and the .deb's (only used to choose the default image)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "amd64"], var.architecture)
    error_message = "architecture must be arm64 or amd64."
  }
}

variable "data_volume_size" {
  description = "GiB of the encrypted volume that holds /var/lib/portholed: keys, config, the SQLite database when there is no RDS. It outlives the instance."
  type        = number
  default     = 20

  validation {
    condition     = var.data_volume_size >= 8 && var.data_volume_size <= 16384
    error_message = "data_volume_size must be from 8 to 16384 GiB."
  }
}

variable "rds" {
  description = "Keep the database in Amazon RDS for PostgreSQL (true) rather than in SQLite on the data volume (false)."
  type        = bool
  default     = true
}

variable "db_engine_version" {
  description = "PostgreSQL's major version on RDS; RDS picks and upgrades the minor one."
  type        = string
  default     = "17"

  validation {
    condition     = contains(["15", "16", "17"], var.db_engine_version)
    error_message = "db_engine_version must be 15, 16 or 17."
  }
}

variable "db_instance_class" {
  description = "The RDS instance class."
  type        = string
  default     = "db.t4g.small"

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.db_instance_class))
    error_message = "db_instance_class must be an RDS class such as db.t4g.small."
  }
}

variable "db_allocated_storage" {
  description = "GiB of the database's storage at first; it grows by itself up to ten times that."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage >= 20 && var.db_allocated_storage <= 6553
    error_message = "db_allocated_storage must be from 20 to 6553 GiB."
  }
}

variable "db_multi_az" {
  description = "A standby database in a second availability zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups of the database."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be from 1 to 35."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the database (and take a final snapshot when it is deleted). Turn off only to tear a test install down."
  type        = bool
  default     = true
}

variable "recordings_bucket_name" {
  description = "The recordings bucket's name. Empty: NAME-recordings-ACCOUNT_ID."
  type        = string
  default     = ""

  validation {
    condition     = var.recordings_bucket_name == "" || can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.recordings_bucket_name))
    error_message = "recordings_bucket_name must be 3 to 63 of a-z, 0-9 and - (no dots: portholed reaches the bucket by virtual host over TLS), or empty."
  }
}

variable "recordings_versioning" {
  description = "Keep overwritten and deleted recordings' objects as noncurrent versions for recordings_noncurrent_days, against a mistaken or malicious delete. The leases portholed rewrites are small, and expire with them."
  type        = bool
  default     = true
}

variable "recordings_noncurrent_days" {
  description = "Days a noncurrent version of a recording's object is kept (with recordings_versioning)."
  type        = number
  default     = 30

  validation {
    condition     = var.recordings_noncurrent_days >= 1 && var.recordings_noncurrent_days <= 3650
    error_message = "recordings_noncurrent_days must be from 1 to 3650."
  }
}

variable "recordings_access_log_bucket" {
  description = "A bucket that takes S3 server access logs of the recordings bucket. Empty: none."
  type        = string
  default     = ""
}

variable "iot_core" {
  description = "Use AWS IoT Core as the control channel instead of portholed's embedded MQTT broker: the policies of deploy/aws-iot, a certificate for the server, and (with iot_ca_certificate_pem) the CA that signs device certificates, registered with just-in-time provisioning of a thing per device."
  type        = bool
  default     = false
}

variable "iot_ca_certificate_pem" {
  description = "With iot_core: your CA's certificate (PEM), which signs device certificates with CN=<fleet>/<device> (see deploy/aws-iot/README.md). Empty: register no CA."
  type        = string
  default     = ""

  validation {
    condition     = var.iot_ca_certificate_pem == "" || can(regex("-----BEGIN CERTIFICATE-----", var.iot_ca_certificate_pem))
    error_message = "iot_ca_certificate_pem must be a PEM certificate, or empty."
  }
}

variable "iot_ca_verification_certificate_pem" {
  description = "With iot_ca_certificate_pem: a certificate your CA signed for the common name of aws iot get-registration-code, which proves to AWS that you hold the CA's key."
  type        = string
  default     = ""

  validation {
    condition     = var.iot_ca_verification_certificate_pem == "" || can(regex("-----BEGIN CERTIFICATE-----", var.iot_ca_verification_certificate_pem))
    error_message = "iot_ca_verification_certificate_pem must be a PEM certificate, or empty."
  }
}

variable "log_retention_days" {
  description = "Days the VPC's flow logs and the database's logs are kept in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one CloudWatch Logs takes: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}
