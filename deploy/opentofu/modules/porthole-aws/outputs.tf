output "server_url" {
  description = "The server's URL, for porthole login and porthole-agent enroll."
  value       = local.server_url
}

output "public_ip" {
  description = "The server's Elastic IP: point domain_name's A record here when the module does not (route53_zone_id)."
  value       = aws_eip.server.public_ip
}

output "instance_id" {
  description = "The portholed instance, for Session Manager: aws ssm start-session --target ID."
  value       = aws_instance.server.id
}

output "admin_credentials_command" {
  description = "Reads, once, the first administrator's password and TOTP secret that portholed init wrote on the instance (then delete the file)."
  value       = "aws ssm start-session --region ${local.region} --target ${aws_instance.server.id} --document-name AWS-StartInteractiveCommand --parameters command='sudo cat /root/portholed-init.txt'"
}

output "first_enrollment_command" {
  description = "The commands that enroll the first device: the engineer logs in as the administrator, makes a fleet and a token; the token's command, printed with the server's certificate fingerprint, runs on the device."
  value       = <<-EOT
    porthole login ${local.server_url} --email ${var.admin_email}
    porthole fleets create main
    porthole enroll-token create --fleet main
    # then on the device, as root, with porthole-agent installed, the command that printed:
    porthole-agent enroll --server ${local.server_url} --token phe_... --fingerprint sha256:... --name DEVICE
  EOT
}

output "recordings_bucket" {
  description = "The recordings bucket."
  value       = aws_s3_bucket.recordings.id
}

output "database_endpoint" {
  description = "RDS's endpoint (host:port), or null with SQLite."
  value       = var.rds ? aws_db_instance.this[0].endpoint : null
}

output "iot_endpoint" {
  description = "With iot_core: the AWS IoT Core endpoint devices connect to (broker.url mqtts://ENDPOINT:8883 in their agent.yaml)."
  value       = var.iot_core ? data.aws_iot_endpoint.data[0].endpoint_address : null
}

output "iot_registration_code" {
  description = "With iot_core: the common name of the verification certificate that registers your device CA (iot_ca_verification_certificate_pem)."
  value       = var.iot_core ? data.aws_iot_registration_code.this[0].registration_code : null
}

output "kms_key_arn" {
  description = "The key that encrypts the install's volumes, database, recordings, secrets and logs."
  value       = aws_kms_key.this.arn
}
