# The instance's role: what portholed and its first boot may do, and no
# more. Session Manager (AmazonSSMManagedInstanceCore) stands in for SSH;
# the recordings bucket (list, read, write, delete its objects) through
# recordings_s3.aws_role; the install's key, only through S3 and Secrets
# Manager; and the two secrets the first boot reads: RDS's master password
# and the IoT server certificate.

resource "aws_iam_role" "server" {
  name = "${var.name}-server"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = local.tags
}

resource "aws_iam_instance_profile" "server" {
  name = "${var.name}-server"
  role = aws_iam_role.server.name

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "server_ssm" {
  role       = aws_iam_role.server.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy" "server" {
  name = "porthole"
  role = aws_iam_role.server.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid      = "RecordingsBucket"
          Effect   = "Allow"
          Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
          Resource = aws_s3_bucket.recordings.arn
        },
        {
          Sid      = "Recordings"
          Effect   = "Allow"
          Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
          Resource = "${aws_s3_bucket.recordings.arn}/*"
        },
        {
          Sid      = "InstallKeyThroughServices"
          Effect   = "Allow"
          Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource = aws_kms_key.this.arn
          Condition = {
            StringEquals = {
              "kms:ViaService" = ["s3.${local.region}.amazonaws.com", "secretsmanager.${local.region}.amazonaws.com"]
            }
          }
        },
      ],
      length(local.boot_secrets) > 0 ? [{
        Sid      = "FirstBootSecrets"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = local.boot_secrets
      }] : [],
    )
  })
}

locals {
  boot_secrets = concat(
    var.rds ? [aws_db_instance.this[0].master_user_secret[0].secret_arn] : [],
    var.iot_core ? [aws_secretsmanager_secret.iot_server[0].arn] : [],
  )
}
