// Package helm_test checks the Helm chart deploy/helm/porthole with the
// real helm (the version scripts/setup.sh builds into .tools): helm lint
// --strict with each example's values, and helm template, whose output
// is read back here: the API nodes and relay nodes apart, each node's
// config loaded by portholed's own loader with the roles it must serve,
// the keys copied as portholed wants them (the init container's script
// run for real on keys portholed made, then loaded), the pods locked
// down, and the refusals of values that cannot work. No cluster runs
// here: README.md in this directory says what that leaves unchecked.
package helm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/daemon"
	"github.com/porthole/porthole/daemon/daemoncmd"
)

const (
	chart    = "porthole"
	release  = "prod"
	fullname = "prod-porthole"
)

// helm returns the helm binary: .tools/helm (scripts/setup.sh builds it),
// else one on $PATH.
func helm(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs("../../.tools/helm"); err == nil {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("helm is not installed and CI requires it (run scripts/setup.sh, which builds it into .tools)")
	}
	t.Skip("skipping: helm is not installed (run scripts/setup.sh, which builds it into .tools)")
	return ""
}

func examples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples/*.yaml: %v %v", files, err)
	}
	return files
}

// runHelm runs helm with args and returns its standard output; errOut
// gets its standard error.
func runHelm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func TestLint(t *testing.T) {
	for _, f := range examples(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, errOut, err := runHelm(t, "lint", "--strict", "--values", f, chart)
			if err != nil || !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint --strict --values %s: %v\n%s%s", f, err, out, errOut)
			}
		})
	}
}

// object is one Kubernetes object of helm template's output.
type object = map[string]any

func kindOf(o object) string { return str(o, "kind") }
func nameOf(o object) string { return str(o, "metadata", "name") }

// get walks maps and lists (by index) of o.
func get(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := o.(map[string]any)
			if !ok {
				return nil
			}
			o = m[k]
		case int:
			l, ok := o.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

func str(o any, path ...any) string { s, _ := get(o, path...).(string); return s }

func render(t *testing.T, args ...string) []object {
	t.Helper()
	out, errOut, err := runHelm(t, append([]string{"template", release, chart}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, errOut)
	}
	var objs []object
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("helm template's output: %v", err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if kindOf(o) == kind && nameOf(o) == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

// values reads an example's values file.
func values(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTemplate renders each example and checks what it makes.
func TestTemplate(t *testing.T) {
	for _, f := range examples(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			vals := values(t, f)
			objs := render(t, "--values", f)
			cm := find(t, objs, "ConfigMap", fullname)
			relays := 2
			if n, ok := get(vals, "relay", "replicas").(int); ok {
				relays = n
			}
			domain := str(vals, "relay", "advertiseDomain")

			// Each role's config is one portholed loads, serving that role
			// alone, on the port the pods expose.
			for _, role := range []string{"api", "relay"} {
				text := str(cm, "data", role+".yaml")
				pod := fullname + "-relay-0"
				text = strings.ReplaceAll(text, "__POD_NAME__", pod)
				cfg, err := daemon.ParseConfig([]byte(text))
				if err != nil {
					t.Fatalf("%s.yaml: portholed refuses it: %v\n%s", role, err, text)
				}
				if !slices.Equal(cfg.ServedRoles(), []string{role}) {
					t.Errorf("%s.yaml serves %v; want [%s]", role, cfg.ServedRoles(), role)
				}
				if cfg.Listen != ":8443" || cfg.PublicURL != "https://"+str(vals, "publicHost") {
					t.Errorf("%s.yaml: listen %s, public_url %s", role, cfg.Listen, cfg.PublicURL)
				}
				if !cfg.Broker.External() || cfg.Broker.URL != str(vals, "broker", "url") {
					t.Errorf("%s.yaml: broker %+v; want the external broker %s", role, cfg.Broker, str(vals, "broker", "url"))
				}
				if cfg.Recordings != str(vals, "recordings", "url") || cfg.RecordingsS3.AWSRole != (get(vals, "recordings", "awsRole") == true) {
					t.Errorf("%s.yaml: recordings %s %+v", role, cfg.Recordings, cfg.RecordingsS3)
				}
				if role == "relay" {
					if want := pod + "." + domain + ":443"; cfg.Relay.Advertise != want {
						t.Errorf("relay.yaml advertises %s; want %s", cfg.Relay.Advertise, want)
					}
					if cfg.Relay.Region != str(vals, "relay", "region") {
						t.Errorf("relay.yaml: region %q; want %q", cfg.Relay.Region, str(vals, "relay", "region"))
					}
				}
				if cfg.Relay.Listen != "127.0.0.1:2222" {
					t.Errorf("%s.yaml: the SSH relay listens on %s; want the pod's loopback", role, cfg.Relay.Listen)
				}
			}

			api := find(t, objs, "Deployment", fullname+"-api")
			relay := find(t, objs, "StatefulSet", fullname+"-relay")
			if n, ok := get(vals, "api", "replicas").(int); ok && get(api, "spec", "replicas") != n {
				t.Errorf("the API Deployment has %v replicas; want %d", get(api, "spec", "replicas"), n)
			}
			if get(relay, "spec", "replicas") != relays {
				t.Errorf("the relay StatefulSet has %v replicas; want %d", get(relay, "spec", "replicas"), relays)
			}
			for role, o := range map[string]object{"api": api, "relay": relay} {
				checkPod(t, role, get(o, "spec", "template").(map[string]any), vals)
			}

			// The API behind one Service on 443; each relay behind its own.
			svc := find(t, objs, "Service", fullname+"-api")
			checkService(t, svc, "api", "")
			for i := range relays {
				pod := fmt.Sprintf("%s-relay-%d", fullname, i)
				checkService(t, find(t, objs, "Service", pod), "relay", pod)
			}
			for _, o := range objs {
				if kindOf(o) == "Service" && strings.HasPrefix(nameOf(o), fullname+"-relay-") {
					var i int
					if _, err := fmt.Sscanf(strings.TrimPrefix(nameOf(o), fullname+"-relay-"), "%d", &i); err != nil || i >= relays {
						t.Errorf("Service %s: no relay of that number", nameOf(o))
					}
				}
				if kindOf(o) == "Secret" {
					t.Errorf("the chart renders Secret %s; keys and passwords come from Secrets the operator makes", nameOf(o))
				}
			}
			if sa := find(t, objs, "ServiceAccount", fullname); get(vals, "serviceAccount", "annotations") != nil &&
				str(sa, "metadata", "annotations", "eks.amazonaws.com/role-arn") != str(vals, "serviceAccount", "annotations", "eks.amazonaws.com/role-arn") {
				t.Errorf("the ServiceAccount does not carry the pods' AWS role")
			}
		})
	}
}

// checkService: a Service on 443 to the pods' https port, of the role (and
// the one pod, for a relay's own).
func checkService(t *testing.T, svc object, role, pod string) {
	t.Helper()
	if str(svc, "spec", "selector", "app.kubernetes.io/component") != role || str(svc, "spec", "selector", "statefulset.kubernetes.io/pod-name") != pod {
		t.Errorf("Service %s selects %v; want the %s pods (%q)", nameOf(svc), get(svc, "spec", "selector"), role, pod)
	}
	ports, _ := get(svc, "spec", "ports").([]any)
	if len(ports) != 1 || get(ports[0], "port") != 443 || str(ports[0], "targetPort") != "https" {
		t.Errorf("Service %s ports %v; want 443 to https alone", nameOf(svc), ports)
	}
}

// checkPod: the pod runs portholed serve on the config its init container
// writes, locked down, with the keys and secrets the values name.
func checkPod(t *testing.T, role string, tmpl map[string]any, vals map[string]any) {
	t.Helper()
	spec := get(tmpl, "spec")
	if str(tmpl, "metadata", "labels", "app.kubernetes.io/component") != role {
		t.Errorf("%s pods are not labelled component=%s", role, role)
	}
	for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if get(spec, k) == true {
			t.Errorf("%s pods set %s", role, k)
		}
	}
	if get(spec, "securityContext", "runAsNonRoot") != true {
		t.Errorf("%s pods may run as root", role)
	}
	for _, v := range get(spec, "volumes").([]any) {
		if get(v, "hostPath") != nil {
			t.Errorf("%s pods mount a host path: %v", role, v)
		}
	}
	inits, _ := get(spec, "initContainers").([]any)
	ctrs, _ := get(spec, "containers").([]any)
	if len(inits) != 1 || len(ctrs) != 1 {
		t.Fatalf("%s pods: %d init containers, %d containers; want 1 and 1", role, len(inits), len(ctrs))
	}
	for _, c := range append(slices.Clone(inits), ctrs...) {
		sc := get(c, "securityContext")
		if get(sc, "allowPrivilegeEscalation") != false || get(sc, "readOnlyRootFilesystem") != true || str(sc, "capabilities", "drop", 0) != "ALL" {
			t.Errorf("%s pods: container %s is not locked down: %v", role, str(c, "name"), sc)
		}
	}
	main := ctrs[0]
	cmd := get(main, "command").([]any)
	var args []string
	for _, a := range cmd {
		args = append(args, a.(string))
	}
	if len(args) < 4 || filepath.Base(args[0]) != "portholed" || args[1] != "serve" || args[2] != "--config" {
		t.Fatalf("%s pods run %v; want portholed serve --config FILE", role, args)
	}
	var help bytes.Buffer
	if err := daemoncmd.Run(context.Background(), []string{"serve", "--help"}, daemoncmd.IO{In: strings.NewReader(""), Out: &help, Err: &help}); err != nil || !strings.Contains(help.String(), "--config") {
		t.Errorf("portholed serve --help: %v\n%s", err, &help)
	}
	script := str(inits[0], "command", 2)
	if !strings.Contains(script, ">"+args[3]) {
		t.Errorf("%s pods' init container does not write %s, the config portholed serve reads:\n%s", role, args[3], script)
	}
	if get(main, "ports", 0, "containerPort") != 8443 {
		t.Errorf("%s pods expose %v; want 8443, the config's listen port", role, get(main, "ports"))
	}
	env := map[string]any{}
	for _, e := range get(main, "env").([]any) {
		env[str(e, "name")] = e
	}
	if name := str(vals, "database", "passwordSecret", "name"); name != "" {
		if str(env["PGPASSWORD"], "valueFrom", "secretKeyRef", "name") != name {
			t.Errorf("%s pods: PGPASSWORD does not come from Secret %s", role, name)
		}
	}
	if name := str(vals, "recordings", "credentialsSecret"); name != "" && str(main, "envFrom", 0, "secretRef", "name") != name {
		t.Errorf("%s pods do not take the S3 credentials from Secret %s", role, name)
	}
	runInit(t, role, script)
}

// runInit runs the init container's script for real, with its paths moved
// under a scratch directory, on keys portholed init made (for the API
// pods) or the data directory portholed init-node made from them (for the
// relay pods), and checks that portholed then loads the keys (which must
// be its own, 0600, in a directory of its own; on a relay pod without a
// signing key) and the config.
func runInit(t *testing.T, role, script string) {
	t.Helper()
	root := t.TempDir()
	keys := filepath.Join(root, "etc/porthole/keys")
	apiKeys := keys
	if role == "relay" {
		apiKeys = filepath.Join(root, "api-keys")
	}
	if err := ca.Generate(apiKeys, []string{"porthole.example.com"}); err != nil {
		t.Fatal(err)
	}
	if role == "relay" {
		k, err := ca.Load(apiKeys)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ca.WriteNodeDir(k, ca.NodeDir{Dir: keys, RelayHosts: []string{"porthole.example.com"}}); err != nil {
			t.Fatal(err)
		}
	}
	// As a Secret volume shows them: read-only, group-readable.
	files, err := os.ReadDir(keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.Chmod(filepath.Join(keys, f.Name()), 0o440); err != nil {
			t.Fatalf("the keys portholed makes: %v", err)
		}
	}
	conf := filepath.Join(root, "etc/porthole/config")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgText := "data_dir: /var/lib/portholed/data\npublic_url: https://porthole.example.com\nroles: [" + role + "]\n" +
		"broker:\n  url: mqtts://broker.example.com\nrelay:\n  advertise: __POD_NAME__.relays.example.com:443\n"
	if err := os.WriteFile(filepath.Join(conf, role+".yaml"), []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "var/lib/portholed")
	if err := os.MkdirAll(data, 0o777); err != nil { // an emptyDir
		t.Fatal(err)
	}
	moved := strings.NewReplacer("/var/lib/portholed", data, "/etc/porthole", filepath.Join(root, "etc/porthole")).Replace(script)
	cmd := exec.Command("/bin/sh", "-ec", moved)
	cmd.Env = append(os.Environ(), "POD_NAME="+fullname+"-relay-1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s pods' init container: %v\n%s", role, err, out)
	}
	load := ca.Load
	if role == "relay" {
		load = ca.LoadNode // which refuses a signing key
	}
	if _, err := load(filepath.Join(data, "data")); err != nil {
		t.Errorf("%s pods: portholed cannot load the keys the init container copied: %v", role, err)
	}
	cfg, err := daemon.LoadConfig(filepath.Join(data, "data", "portholed.yaml"))
	if err != nil {
		t.Fatalf("%s pods: %v", role, err)
	}
	if want := fullname + "-relay-1.relays.example.com:443"; cfg.Relay.Advertise != want {
		t.Errorf("%s pods: advertised %s; want the pod's own name, %s", role, cfg.Relay.Advertise, want)
	}
}

// TestRefusals: values that cannot work are refused when rendering, by
// the chart's required values and checks or by values.schema.json.
func TestRefusals(t *testing.T) {
	example := "examples/eks-iot-core.yaml"
	for _, tt := range []struct {
		name string
		set  []string
		want string
	}{
		{"no public host", []string{"publicHost="}, "publicHost is required"},
		{"no keys", []string{"keys.secretName="}, "keys.secretName is required"},
		{"no relay keys", []string{"keys.relaySecretName="}, "keys.relaySecretName is required"},
		{"no database", []string{"database.url="}, "database.url is required"},
		{"no broker", []string{"broker.url="}, "broker.url is required"},
		{"no bucket", []string{"recordings.url="}, "recordings.url is required"},
		{"no relay domain", []string{"relay.advertiseDomain="}, "relay.advertiseDomain is required"},
		{"no image tag", []string{"image.tag="}, "image.tag is required"},
		{"both the role and a key", []string{"recordings.credentialsSecret=s3-keys"}, "awsRole and credentialsSecret cannot both sign"},
		{"no relays", []string{"relay.replicas=0"}, "minimum"},
		{"not a postgres URL", []string{"database.url=mysql://db/porthole"}, "pattern"},
		{"an unknown value", []string{"replicas=3"}, "additional properties"},
		{"a bad log level", []string{"log.level=loud"}, "log"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"template", release, chart, "--values", example}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			_, errOut, err := runHelm(t, args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded", tt.set)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("helm template %v: %s; want it to say %q", tt.set, errOut, tt.want)
			}
		})
	}
}
