#!/usr/bin/env bash
# porthole-bootstrap: sets a portholed instance up on its first boot, run
# by cloud-init (deploy/opentofu, module porthole-aws). It reads its
# settings from /etc/porthole-bootstrap/bootstrap.env and the config to
# install from /etc/porthole-bootstrap/portholed.yaml, both written by
# cloud-init, and:
#
#   1. formats the data volume if it is blank, and mounts it at
#      /var/lib/portholed (in /etc/fstab);
#   2. installs the portholed .deb after checking its SHA-256 (the package
#      makes the portholed user and starts nothing);
#   3. with RDS, makes portholed's own database role, with a password made
#      here (kept in /etc/portholed/pgpass only) and a schema of its own,
#      using the master password from Secrets Manager once; with IoT Core, writes the
#      server's certificate and key from Secrets Manager;
#   4. if the volume holds no server yet, runs portholed init (its output,
#      with the administrator's password and TOTP secret, goes to
#      /root/portholed-init.txt alone) and installs the config;
#   5. lets the unit bind port 443, then enables and starts portholed.
#
# Run again (a replaced instance, the same volume), it finds the server on
# the volume and skips steps 3 and 4. Secrets never reach the console or
# the command line of a process.
set -euo pipefail

say() { printf 'porthole-bootstrap: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

# shellcheck source=/dev/null
. /etc/porthole-bootstrap/bootstrap.env
: "${PORTHOLE_DEB_URL:?}" "${PORTHOLE_DEB_SHA256:?}" "${PORTHOLE_DATA_VOLUME:?}" "${PORTHOLE_ADMIN_EMAIL:?}"
: "${PORTHOLE_PUBLIC_URL:?}" "${PORTHOLE_REGION:?}"
PORTHOLE_DB_HOST=${PORTHOLE_DB_HOST:-}
PORTHOLE_IOT_SECRET_ARN=${PORTHOLE_IOT_SECRET_ARN:-}

data=/var/lib/portholed
etc=/etc/portholed
umask 077

# json KEY: the value of KEY in the JSON object on standard input.
json() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# 1. The data volume: a Nitro instance shows an EBS volume as an NVMe disk
# whose serial is the volume's ID without the dash. It is attached after
# the instance starts, so wait for it.
dev=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${PORTHOLE_DATA_VOLUME//-/}
for _ in $(seq 120); do
	[ -e "$dev" ] && break
	sleep 5
done
[ -e "$dev" ] || die "the data volume $PORTHOLE_DATA_VOLUME never appeared at $dev"
fresh=
if ! blkid "$dev" >/dev/null 2>&1; then
	say "formatting the new data volume $PORTHOLE_DATA_VOLUME"
	mkfs.ext4 -q -L portholed "$dev"
	fresh=1
fi
install -d -m 0700 "$data"
if ! grep -q "[[:space:]]${data}[[:space:]]" /etc/fstab; then
	echo "UUID=$(blkid -s UUID -o value "$dev") $data ext4 defaults,nofail,noatime 0 2" >>/etc/fstab
fi
mountpoint -q "$data" || mount "$data"
# portholed init takes an empty directory.
if [ -n "$fresh" ]; then rmdir "$data/lost+found"; fi

# 2. The package, checked before dpkg sees it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "downloading $PORTHOLE_DEB_URL"
curl -fsSL --proto '=https' --tlsv1.2 --retry 5 -o "$tmp/portholed.deb" "$PORTHOLE_DEB_URL"
echo "$PORTHOLE_DEB_SHA256  $tmp/portholed.deb" | sha256sum --check --quiet - ||
	die "$PORTHOLE_DEB_URL does not have the SHA-256 portholed_deb_sha256 names: not installing it"
chmod 0755 "$tmp"
chmod 0644 "$tmp/portholed.deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$tmp/portholed.deb"
chown portholed:portholed "$data"
chmod 0700 "$data"
install -d -m 0750 -g portholed "$etc"

# Secrets Manager through its API, signed by curl with the instance
# profile's credentials (IMDSv2): no AWS CLI needed. The credentials go
# to curl on its standard input, never on a command line.
imds() {
	curl -fsS --retry 5 -H "X-aws-ec2-metadata-token: $imds_token" "http://169.254.169.254/latest/$1"
}
secret() {
	local role creds
	imds_token=$(curl -fsS --retry 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" http://169.254.169.254/latest/api/token)
	role=$(imds meta-data/iam/security-credentials/)
	creds=$(imds "meta-data/iam/security-credentials/$role")
	{
		printf 'user = "%s:%s"\n' "$(json AccessKeyId <<<"$creds")" "$(json SecretAccessKey <<<"$creds")"
		printf 'header = "x-amz-security-token: %s"\n' "$(json Token <<<"$creds")"
	} | curl -fsS --retry 5 --config - --aws-sigv4 "aws:amz:$PORTHOLE_REGION:secretsmanager" \
		-H 'X-Amz-Target: secretsmanager.GetSecretValue' -H 'Content-Type: application/x-amz-json-1.1' \
		--data "{\"SecretId\":\"$1\"}" "https://secretsmanager.$PORTHOLE_REGION.amazonaws.com/" | json SecretString
}

if [ -e "$data/portholed.yaml" ]; then
	say "$data holds a server already: starting it as it is"
else
	# 3. The database and the control channel.
	if [ -n "$PORTHOLE_DB_HOST" ]; then
		: "${PORTHOLE_DB_PORT:?}" "${PORTHOLE_DB_SECRET_ARN:?}"
		say "making portholed's database role"
		curl -fsSL --proto '=https' --retry 5 -o "$etc/rds-ca.pem" \
			"https://truststore.pki.rds.amazonaws.com/$PORTHOLE_REGION/$PORTHOLE_REGION-bundle.pem"
		chmod 0644 "$etc/rds-ca.pem"
		master=$(secret "$PORTHOLE_DB_SECRET_ARN")
		password=$(openssl rand -hex 32)
		conn="host=$PORTHOLE_DB_HOST port=$PORTHOLE_DB_PORT dbname=porthole user=$(json username <<<"$master") sslmode=verify-full sslrootcert=$etc/rds-ca.pem"
		# psql reads both passwords from its environment and the statements
		# from its standard input.
		PGPASSWORD=$(json password <<<"$master") PORTHOLED_PASSWORD=$password psql -q -v ON_ERROR_STOP=1 "$conn" <<-'SQL'
			\getenv password PORTHOLED_PASSWORD
			SELECT format('CREATE ROLE portholed LOGIN PASSWORD %L', :'password')
			WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portholed') \gexec
			SELECT format('ALTER ROLE portholed LOGIN PASSWORD %L', :'password') \gexec
			GRANT portholed TO CURRENT_USER;
			CREATE SCHEMA IF NOT EXISTS portholed AUTHORIZATION portholed;
			ALTER ROLE portholed SET search_path = portholed;
		SQL
		printf '%s:%s:porthole:portholed:%s\n' "$PORTHOLE_DB_HOST" "$PORTHOLE_DB_PORT" "$password" >"$etc/pgpass"
		chown portholed:portholed "$etc/pgpass"
		chmod 0600 "$etc/pgpass"
		unset master password
	fi
	if [ -n "$PORTHOLE_IOT_SECRET_ARN" ]; then
		say "writing the server's AWS IoT Core certificate"
		install -d -m 0750 -g portholed "$etc/iot"
		iot=$(secret "$PORTHOLE_IOT_SECRET_ARN")
		json certificate <<<"$iot" >"$etc/iot/server.crt"
		json key <<<"$iot" >"$etc/iot/server.key"
		chown portholed:portholed "$etc/iot/server.crt" "$etc/iot/server.key"
		chmod 0600 "$etc/iot/server.crt" "$etc/iot/server.key"
		unset iot
	fi

	# 4. The server: keys, database, first administrator; then this
	# install's config over the one init wrote (kept beside it).
	database=sqlite
	if [ -n "$PORTHOLE_DB_HOST" ]; then
		database=$(sed -n 's/^database: "\(.*\)"$/\1/p' /etc/porthole-bootstrap/portholed.yaml)
	fi
	say "running portholed init; its output is in /root/portholed-init.txt"
	runuser -u portholed -- portholed init --data "$data" --admin-email "$PORTHOLE_ADMIN_EMAIL" \
		--public-url "$PORTHOLE_PUBLIC_URL" --database "$database" \
		--broker-listen 127.0.0.1:8883 --relay-listen 127.0.0.1:2222 >/root/portholed-init.txt
	mv "$data/portholed.yaml" "$data/portholed.yaml.init"
	install -m 0600 -o portholed -g portholed /etc/porthole-bootstrap/portholed.yaml "$data/portholed.yaml"
fi

# 5. Port 443 needs CAP_NET_BIND_SERVICE, which the packaged unit does not
# give (deploy/systemd/README.md, "Port 443").
install -d -m 0755 /etc/systemd/system/portholed.service.d
cat >/etc/systemd/system/portholed.service.d/port-443.conf <<-'UNIT'
	# Written by porthole-bootstrap (deploy/opentofu): portholed listens on 443.
	[Service]
	CapabilityBoundingSet=CAP_NET_BIND_SERVICE
	AmbientCapabilities=CAP_NET_BIND_SERVICE
UNIT
chmod 0644 /etc/systemd/system/portholed.service.d/port-443.conf
systemctl daemon-reload
systemctl enable --now portholed.service
say "portholed is running at $PORTHOLE_PUBLIC_URL"
