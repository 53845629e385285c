// Package opentofu_test checks deploy/opentofu where no AWS account can be
// reached. It reads the module's HCL and holds every resource of a kind to
// the install's security rules, as a static scanner would (only 443 open
// to the world, the bucket private and encrypted, the database private and
// encrypted, IMDSv2, no long-lived keys), renders the portholed config the
// instance gets and loads it with portholed's own config loader, and runs
// the real OpenTofu (tofu fmt, validate, and the module's tests against a
// mock AWS provider) when it and the AWS provider are on this machine.
// README.md here says what each check covers and what none can.
package opentofu_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/porthole/porthole/agent/agentcmd"
	"github.com/porthole/porthole/cli"
	"github.com/porthole/porthole/daemon"
	"github.com/porthole/porthole/daemon/daemoncmd"
)

// module is the AWS module, relative to this directory.
const module = "modules/porthole-aws"

// block is one resource, data source or variable of the module.
type block struct {
	kind, typ, name string // "resource", "aws_instance", "server"
	body            *hclsyntax.Body
	file            string
}

func (b block) String() string { return fmt.Sprintf("%s.%s (%s)", b.typ, b.name, b.file) }

// loadModule parses every .tf file of dir.
func loadModule(t *testing.T, dir string) []block {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	p := hclparse.NewParser()
	var blocks []block
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", f, diags)
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			bl := block{kind: b.Type, body: b.Body, file: filepath.Base(f)}
			switch len(b.Labels) {
			case 2:
				bl.typ, bl.name = b.Labels[0], b.Labels[1]
			case 1:
				bl.name = b.Labels[0]
			}
			blocks = append(blocks, bl)
		}
	}
	return blocks
}

func resources(blocks []block, typ string) []block {
	var out []block
	for _, b := range blocks {
		if b.kind == "resource" && b.typ == typ {
			out = append(out, b)
		}
	}
	return out
}

// literal evaluates attribute name of body without variables or
// functions: cty.NilVal when the body has no such attribute, and
// cty.DynamicVal when it depends on something (a variable, another
// resource).
func literal(body *hclsyntax.Body, name string) cty.Value {
	attr, ok := body.Attributes[name]
	if !ok {
		return cty.NilVal
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return cty.DynamicVal
	}
	return v
}

// nested returns the body's blocks of a type.
func nested(body *hclsyntax.Body, typ string) []*hclsyntax.Body {
	var out []*hclsyntax.Body
	for _, b := range body.Blocks {
		if b.Type == typ {
			out = append(out, b.Body)
		}
	}
	return out
}

// refersTo reports whether the attribute's expression refers to name
// (such as "aws_security_group.server" or "var.name").
func refersTo(body *hclsyntax.Body, attr, name string) bool {
	a, ok := body.Attributes[attr]
	if !ok {
		return false
	}
	for _, tr := range a.Expr.Variables() {
		if strings.HasPrefix(traversalString(tr), name) {
			return true
		}
	}
	return false
}

func traversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for i, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		default:
			if i == 0 {
				return ""
			}
			b.WriteString("[]")
		}
	}
	return b.String()
}

func isTrue(v cty.Value) bool {
	return v != cty.NilVal && v.IsKnown() && !v.IsNull() && v.Type() == cty.Bool && v.True()
}

func isString(v cty.Value, want string) bool {
	return v != cty.NilVal && v.IsKnown() && !v.IsNull() && v.Type() == cty.String && v.AsString() == want
}

func isNumber(v cty.Value, want int64) bool {
	if v == cty.NilVal || !v.IsKnown() || v.IsNull() || v.Type() != cty.Number {
		return false
	}
	n, _ := v.AsBigFloat().Int64()
	return n == want
}

// TestOnly443IsOpen: the only ingress rules are 443/tcp (from the allowed
// ranges) and PostgreSQL from the server's own group; security groups
// carry no inline rules (which would hide from this check) and no legacy
// aws_security_group_rule is used.
func TestOnly443IsOpen(t *testing.T) {
	blocks := loadModule(t, module)
	if rs := resources(blocks, "aws_security_group_rule"); len(rs) > 0 {
		t.Errorf("%v: use aws_vpc_security_group_ingress_rule and _egress_rule, one rule each", rs)
	}
	for _, sg := range resources(blocks, "aws_security_group") {
		if len(nested(sg.body, "ingress")) > 0 || len(nested(sg.body, "egress")) > 0 {
			t.Errorf("%v has inline rules; give each its own rule resource", sg)
		}
	}
	ingress := resources(blocks, "aws_vpc_security_group_ingress_rule")
	if len(ingress) == 0 {
		t.Fatal("no ingress rules found; is the parser still reading the module?")
	}
	for _, r := range ingress {
		from, to, proto := literal(r.body, "from_port"), literal(r.body, "to_port"), literal(r.body, "ip_protocol")
		if !isString(proto, "tcp") {
			t.Errorf("%v: ip_protocol %#v; want tcp", r, proto)
		}
		_, fromSG := r.body.Attributes["referenced_security_group_id"]
		_, v4 := r.body.Attributes["cidr_ipv4"]
		_, v6 := r.body.Attributes["cidr_ipv6"]
		_, pl := r.body.Attributes["prefix_list_id"]
		switch {
		case fromSG && !v4 && !v6 && !pl:
			// Inside the VPC, from one of the install's groups: PostgreSQL only.
			if !isNumber(from, 5432) || !isNumber(to, 5432) || !refersTo(r.body, "referenced_security_group_id", "aws_security_group.server") {
				t.Errorf("%v: a rule between groups must be PostgreSQL (5432) from the server's group", r)
			}
		case !fromSG && (v4 || v6):
			if !isNumber(from, 443) || !isNumber(to, 443) {
				t.Errorf("%v opens %#v-%#v to an address range; only 443 may be", r, from, to)
			}
			if v4 && !refersTo(r.body, "cidr_ipv4", "each.value") {
				t.Errorf("%v: its range must come from allowed_cidrs (for_each)", r)
			}
		default:
			t.Errorf("%v: want exactly one source, an address range (443) or the server's group (5432)", r)
		}
	}
}

// TestRecordingsBucketIsPrivateAndEncrypted: every bucket blocks every
// kind of public access, is encrypted with the install's KMS key, is
// owned by the account alone, and refuses requests without TLS.
func TestRecordingsBucketIsPrivateAndEncrypted(t *testing.T) {
	blocks := loadModule(t, module)
	buckets := resources(blocks, "aws_s3_bucket")
	if len(buckets) == 0 {
		t.Fatal("no bucket found")
	}
	for _, b := range buckets {
		ref := "aws_s3_bucket." + b.name
		find := func(typ string) *block {
			for _, r := range resources(blocks, typ) {
				if refersTo(r.body, "bucket", ref) {
					return &r
				}
			}
			t.Errorf("%v has no %s", b, typ)
			return nil
		}
		if _, ok := b.body.Attributes["force_destroy"]; ok {
			t.Errorf("%v: force_destroy would delete recordings with the bucket", b)
		}
		if pab := find("aws_s3_bucket_public_access_block"); pab != nil {
			for _, k := range []string{"block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"} {
				if !isTrue(literal(pab.body, k)) {
					t.Errorf("%v: %s is not true", pab, k)
				}
			}
		}
		if enc := find("aws_s3_bucket_server_side_encryption_configuration"); enc != nil {
			ok := false
			for _, rule := range nested(enc.body, "rule") {
				for _, def := range nested(rule, "apply_server_side_encryption_by_default") {
					ok = isString(literal(def, "sse_algorithm"), "aws:kms") && refersTo(def, "kms_master_key_id", "aws_kms_key.")
				}
			}
			if !ok {
				t.Errorf("%v: want aws:kms with the install's key", enc)
			}
		}
		if own := find("aws_s3_bucket_ownership_controls"); own != nil {
			rules := nested(own.body, "rule")
			if len(rules) != 1 || !isString(literal(rules[0], "object_ownership"), "BucketOwnerEnforced") {
				t.Errorf("%v: want BucketOwnerEnforced (no ACLs)", own)
			}
		}
		if pol := find("aws_s3_bucket_policy"); pol != nil {
			src := string(pol.body.Attributes["policy"].SrcRange.SliceBytes(mustRead(t, filepath.Join(module, pol.file))))
			if !strings.Contains(src, `"aws:SecureTransport" = "false"`) || !strings.Contains(src, `Effect    = "Deny"`) {
				t.Errorf("%v does not deny requests without TLS", pol)
			}
			if strings.Contains(src, `Effect    = "Allow"`) {
				t.Errorf("%v allows something; the instance role's policy grants access, the bucket's only denies", pol)
			}
		}
		find("aws_s3_bucket_versioning")
	}
}

// TestDatabaseIsPrivateAndEncrypted: RDS is not publicly accessible, is
// encrypted, keeps its password out of the state, enforces TLS and is
// protected from deletion unless the variable says otherwise.
func TestDatabaseIsPrivateAndEncrypted(t *testing.T) {
	blocks := loadModule(t, module)
	dbs := resources(blocks, "aws_db_instance")
	if len(dbs) != 1 {
		t.Fatalf("%d aws_db_instance; want 1", len(dbs))
	}
	db := dbs[0]
	for _, k := range []string{"storage_encrypted", "manage_master_user_password", "iam_database_authentication_enabled", "auto_minor_version_upgrade", "copy_tags_to_snapshot"} {
		if !isTrue(literal(db.body, k)) {
			t.Errorf("%v: %s is not true", db, k)
		}
	}
	if v := literal(db.body, "publicly_accessible"); v == cty.NilVal || !v.IsKnown() || v.True() {
		t.Errorf("%v: publicly_accessible must be false", db)
	}
	if _, ok := db.body.Attributes["password"]; ok {
		t.Errorf("%v sets password: it would be in the state; RDS manages it", db)
	}
	if !refersTo(db.body, "deletion_protection", "var.deletion_protection") || !refersTo(db.body, "kms_key_id", "aws_kms_key.") {
		t.Errorf("%v: deletion_protection from its variable, storage under the install's key", db)
	}
	forced := false
	for _, pg := range resources(blocks, "aws_db_parameter_group") {
		for _, p := range nested(pg.body, "parameter") {
			forced = forced || isString(literal(p, "name"), "rds.force_ssl") && isString(literal(p, "value"), "1")
		}
	}
	if !forced {
		t.Error("no parameter group sets rds.force_ssl = 1")
	}
	for _, sn := range resources(blocks, "aws_db_subnet_group") {
		if !refersTo(sn.body, "subnet_ids", "aws_subnet.private") {
			t.Errorf("%v: the database belongs in the private subnets", sn)
		}
	}
}

// TestInstance: IMDSv2 only with one hop, encrypted disks, no public
// address but the Elastic IP, and no SSH key.
func TestInstance(t *testing.T) {
	blocks := loadModule(t, module)
	for _, in := range resources(blocks, "aws_instance") {
		md := nested(in.body, "metadata_options")
		if len(md) != 1 || !isString(literal(md[0], "http_tokens"), "required") || !isNumber(literal(md[0], "http_put_response_hop_limit"), 1) {
			t.Errorf("%v: metadata_options must require IMDSv2 tokens with a hop limit of 1", in)
		}
		root := nested(in.body, "root_block_device")
		if len(root) != 1 || !isTrue(literal(root[0], "encrypted")) {
			t.Errorf("%v: its root volume must be encrypted", in)
		}
		for _, k := range []string{"key_name", "associate_public_ip_address"} {
			if _, ok := in.body.Attributes[k]; ok {
				t.Errorf("%v sets %s: operators use Session Manager, and the address is the Elastic IP", in, k)
			}
		}
	}
	for _, v := range resources(blocks, "aws_ebs_volume") {
		if !isTrue(literal(v.body, "encrypted")) {
			t.Errorf("%v is not encrypted", v)
		}
	}
	for _, s := range resources(blocks, "aws_subnet") {
		if isTrue(literal(s.body, "map_public_ip_on_launch")) {
			t.Errorf("%v gives every instance a public address", s)
		}
	}
}

// TestNoLongLivedSecrets: no IAM users or access keys (the instance signs
// with its role), keys rotate, and logs are encrypted and expire.
func TestNoLongLivedSecrets(t *testing.T) {
	blocks := loadModule(t, module)
	for _, typ := range []string{"aws_iam_user", "aws_iam_access_key", "aws_iam_user_policy"} {
		if rs := resources(blocks, typ); len(rs) > 0 {
			t.Errorf("%v: no IAM users or keys; the instance signs with its role", rs)
		}
	}
	for _, k := range resources(blocks, "aws_kms_key") {
		if !isTrue(literal(k.body, "enable_key_rotation")) {
			t.Errorf("%v does not rotate", k)
		}
	}
	for _, lg := range resources(blocks, "aws_cloudwatch_log_group") {
		if !refersTo(lg.body, "kms_key_id", "aws_kms_key.") || !refersTo(lg.body, "retention_in_days", "var.log_retention_days") {
			t.Errorf("%v: want the install's key and log_retention_days", lg)
		}
	}
	for _, s := range resources(blocks, "aws_secretsmanager_secret") {
		if !refersTo(s.body, "kms_key_id", "aws_kms_key.") {
			t.Errorf("%v: want the install's key", s)
		}
	}
	// The default security group of the VPC allows nothing.
	dsg := resources(blocks, "aws_default_security_group")
	if len(dsg) != 1 || len(dsg[0].body.Blocks) != 0 {
		t.Errorf("want one aws_default_security_group without rules; got %v", dsg)
	}
	if len(resources(blocks, "aws_flow_log")) == 0 {
		t.Error("the VPC has no flow log")
	}
}

// TestVariablesAreDocumentedAndValidated: every variable says what it is
// and its type, and every free-form string is validated.
func TestVariablesAreDocumentedAndValidated(t *testing.T) {
	blocks := loadModule(t, module)
	n := 0
	for _, b := range blocks {
		if b.kind != "variable" {
			continue
		}
		n++
		if v := literal(b.body, "description"); v == cty.NilVal || v.AsString() == "" {
			t.Errorf("variable %s has no description", b.name)
		}
		typ, ok := b.body.Attributes["type"]
		if !ok {
			t.Errorf("variable %s has no type", b.name)
			continue
		}
		src := string(typ.SrcRange.SliceBytes(mustRead(t, filepath.Join(module, b.file))))
		if (src == "string" || src == "number" || src == "list(string)") && len(nested(b.body, "validation")) == 0 && b.name != "recordings_access_log_bucket" {
			t.Errorf("variable %s (%s) is not validated", b.name, src)
		}
	}
	if n < 10 {
		t.Errorf("only %d variables found", n)
	}
}

// TestIoTPoliciesAreDeployAWSIoTs: the module reads the policies of
// deploy/aws-iot (checked by that directory's test), not copies.
func TestIoTPoliciesAreDeployAWSIoTs(t *testing.T) {
	blocks := loadModule(t, module)
	src := string(mustRead(t, filepath.Join(module, "iot.tf")))
	for _, p := range resources(blocks, "aws_iot_policy") {
		want := fmt.Sprintf(`file("${local.iot_policy_dir}/%s-policy.json")`, p.name)
		if !strings.Contains(src, want) {
			t.Errorf("%v does not read %s", p, want)
		}
		if _, err := os.Stat(filepath.Join("../aws-iot", p.name+"-policy.json")); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(src, `iot_policy_dir = "${path.module}/../../../aws-iot"`) {
		t.Error("iot.tf does not find deploy/aws-iot at ../../../aws-iot")
	}
}

// renderConfig renders templates/portholed.yaml.tftpl as templatefile
// would, with vars.
func renderConfig(t *testing.T, vars map[string]string) string {
	t.Helper()
	path := filepath.Join(module, "templates/portholed.yaml.tftpl")
	expr, diags := hclsyntax.ParseTemplate(mustRead(t, path), path, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}}
	for k, v := range vars {
		ctx.Variables[k] = cty.StringVal(v)
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return v.AsString()
}

// TestConfigLoads: the config the instance gets, in each mode the module
// makes, is one portholed loads, serving everything on 443.
func TestConfigLoads(t *testing.T) {
	base := map[string]string{
		"host": "porthole.example.com", "database": "sqlite", "iot_endpoint": "",
		"recordings": "s3://porthole-prod-recordings-123456789012/recordings", "recordings_region": "eu-west-1",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tt := range []struct {
		name      string
		vars      map[string]string
		roles     []string
		brokerURL string
	}{
		{"SQLite and the embedded broker", base, []string{"api", "relay", "broker"}, ""},
		{"RDS and the embedded broker", with("database", "postgres://portholed@porthole-prod.abc.eu-west-1.rds.amazonaws.com:5432/porthole?sslmode=verify-full&sslrootcert=/etc/portholed/rds-ca.pem&passfile=/etc/portholed/pgpass"),
			[]string{"api", "relay", "broker"}, ""},
		{"IoT Core", with("iot_endpoint", "a1b2c3-ats.iot.eu-west-1.amazonaws.com"), []string{"api", "relay"}, "mqtts://a1b2c3-ats.iot.eu-west-1.amazonaws.com:8883"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := renderConfig(t, tt.vars)
			cfg, err := daemon.ParseConfig([]byte(text))
			if err != nil {
				t.Fatalf("portholed refuses the config: %v\n%s", err, text)
			}
			if cfg.Listen != ":443" || cfg.PublicURL != "https://porthole.example.com" || cfg.Relay.Advertise != "porthole.example.com:443" {
				t.Errorf("listen %s, public_url %s, relay.advertise %s; want everything on 443", cfg.Listen, cfg.PublicURL, cfg.Relay.Advertise)
			}
			if !slices.Equal(cfg.ServedRoles(), tt.roles) {
				t.Errorf("roles %v; want %v", cfg.ServedRoles(), tt.roles)
			}
			if cfg.Database != tt.vars["database"] {
				t.Errorf("database %q; want %q", cfg.Database, tt.vars["database"])
			}
			if !cfg.RecordingsS3.AWSRole || cfg.Recordings != tt.vars["recordings"] || cfg.RecordingsS3.Region != "eu-west-1" {
				t.Errorf("recordings %s, %+v; want the bucket, signed with the instance's role", cfg.Recordings, cfg.RecordingsS3)
			}
			if tt.brokerURL == "" {
				// The broker's and the relay's own ports stay on loopback:
				// the security group opens 443 alone.
				if cfg.Broker.Listen != "127.0.0.1:8883" || cfg.Relay.Listen != "127.0.0.1:2222" || cfg.Broker.PublicURL != "mqtts://porthole.example.com:443" {
					t.Errorf("broker %s (public %s), relay %s; want loopback, devices told 443", cfg.Broker.Listen, cfg.Broker.PublicURL, cfg.Relay.Listen)
				}
			} else if cfg.Broker.URL != tt.brokerURL || cfg.Broker.CertFile == "" || cfg.Broker.KeyFile == "" {
				t.Errorf("broker %+v; want IoT Core at %s with the server's certificate", cfg.Broker, tt.brokerURL)
			}
		})
	}
}

// TestBootstrapScript: the first boot's script is clean shell, stops at
// the first error, checks the package before installing it, and passes
// portholed init only flags it has.
func TestBootstrapScript(t *testing.T) {
	path := filepath.Join(module, "templates/bootstrap.sh")
	src := string(mustRead(t, path))
	for _, want := range []string{"set -euo pipefail", "sha256sum --check", "systemctl enable --now portholed.service", "AmbientCapabilities=CAP_NET_BIND_SERVICE"} {
		if !strings.Contains(src, want) {
			t.Errorf("%s does not contain %q", path, want)
		}
	}
	// The package is checked before apt-get sees it, and portholed starts
	// only after init and the config (in the code, past the header).
	_, code, _ := strings.Cut(src, "set -euo pipefail")
	order := []string{"sha256sum --check", "apt-get install -y", "-- portholed init", "systemctl enable --now"}
	last := -1
	for _, w := range order {
		i := strings.Index(code, w)
		if i < last {
			t.Errorf("%s: %q comes before what must precede it (%v)", path, w, order)
		}
		last = i
	}
	// Every flag given to portholed init is one init has.
	var help bytes.Buffer
	init := regexp.MustCompile(`-- portholed init((?:[^\n]|\\\n)*)`).FindStringSubmatch(code)
	if init == nil {
		t.Fatalf("%s never runs portholed init", path)
	}
	if err := daemonInitFlags(&help); err != nil {
		t.Fatal(err)
	}
	for _, f := range regexp.MustCompile(`--[a-z-]+`).FindAllString(init[1], -1) {
		if !strings.Contains(help.String(), f+" ") {
			t.Errorf("%s runs portholed init %s, which init does not have", path, f)
		}
	}
	if err := exec.Command("bash", "-n", path).Run(); err != nil {
		t.Errorf("bash -n %s: %v", path, err)
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		if out, err := exec.Command(sc, path).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", path, err, out)
		}
	} else {
		t.Log("shellcheck is not installed: bash -n only")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// daemonInitFlags writes portholed init's --help to w, from the command
// itself.
func daemonInitFlags(w *bytes.Buffer) error {
	return daemoncmd.Run(context.Background(), []string{"init", "--help"}, daemoncmd.IO{In: strings.NewReader(""), Out: w, Err: w})
}

// TestEnrollmentCommands: the commands of the first_enrollment_command
// output are our programs' real subcommands, with flags they have.
func TestEnrollmentCommands(t *testing.T) {
	src := string(mustRead(t, filepath.Join(module, "outputs.tf")))
	_, rest, ok := strings.Cut(src, `output "first_enrollment_command"`)
	if !ok {
		t.Fatal("outputs.tf has no first_enrollment_command")
	}
	_, body, _ := strings.Cut(rest, "<<-EOT\n")
	body, _, _ = strings.Cut(body, "EOT")
	// find is the subcommand words name: its name, whether it runs, the
	// words left and its flags.
	type found struct {
		name     string
		runnable bool
		args     []string
		hasFlag  func(string) bool
	}
	roots := map[string]func(words []string) (found, error){
		"porthole": func(words []string) (found, error) {
			cmd, args, err := cli.Root().Find(words)
			if err != nil {
				return found{}, err
			}
			return found{cmd.Name(), cmd.Runnable(), args, func(n string) bool { return cmd.Flags().Lookup(n) != nil }}, nil
		},
		"porthole-agent": func(words []string) (found, error) {
			cmd, args, err := agentcmd.Root().Find(words)
			if err != nil {
				return found{}, err
			}
			return found{cmd.Name(), cmd.Run != nil, args, func(n string) bool { return cmd.Flags != nil && cmd.Flags.Lookup(n) != nil }}, nil
		},
	}
	n := 0
	for line := range strings.Lines(body) {
		words := strings.Fields(line)
		if len(words) == 0 || words[0] == "#" {
			continue
		}
		find, ok := roots[words[0]]
		if !ok {
			t.Errorf("first_enrollment_command runs %q, not one of our programs", line)
			continue
		}
		cmd, err := find(words[1:])
		if err != nil || !cmd.runnable {
			t.Errorf("%q: no such command (%v)", strings.TrimSpace(line), err)
			continue
		}
		n++
		for _, a := range cmd.args {
			if name, ok := strings.CutPrefix(a, "--"); ok && !cmd.hasFlag(name) {
				t.Errorf("%q: %s %s has no flag --%s", strings.TrimSpace(line), words[0], cmd.name, name)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d commands checked in first_enrollment_command; want 4", n)
	}
}
