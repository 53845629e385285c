package agent

import (
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseConfig: the owner's agent.yaml. ParseConfig never panics; what
// it accepts passes Validate again and, written back as YAML, parses to
// the same Config.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"broker:\n  url: mqtts://mqtt.example.com\n  username: dev1\n  password: secret\n  ca_file: /etc/ca.pem\n  client_cert: /c\n  client_key: /k\n",
		"log_level: debug\nallow_ports: [22, 8080]\nrun_as: pi\nidle_timeout: 5m\nmax_duration: 1h\nproxy: http://u:p@proxy.example:3128\n",
		"consent: approve\napproval_timeout: 2m\nsocket: /run/p.sock\nsocket_group: wheel\nlocal_ui: 127.0.0.1:7780\nrecord_input: true\n",
		"recordings:\n  max_session: 64MiB\n  max_events: 1.5MB\n  max_total: 1GiB\n  keep: 2w\n",
		"recordings: {keep: 1e5w, max_total: 9e18}\n",
		"a: &a [*a, *a]\nproxy: direct\n",
		"allow_ports: [0x16]\nidle_timeout: -1s\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted %q, which Validate then refuses: %v", data, err)
		}
		out := marshalConfig(t, cfg)
		again, err := ParseConfig(out)
		if err != nil || !reflect.DeepEqual(normalConfig(*cfg), normalConfig(*again)) {
			t.Fatalf("%q parsed as %+v, written back as %q, which parses as %+v, %v", data, *cfg, out, again, err)
		}
	})
}

// marshalConfig writes cfg as YAML the way an owner would: yaml.v3 writes
// durations as text but an Age as its nanoseconds, so keep is written as
// Age.String.
func marshalConfig(t *testing.T, cfg *Config) []byte {
	var n yaml.Node
	if err := n.Encode(cfg); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "recordings" {
			continue
		}
		rec := n.Content[i+1]
		for j := 0; j+1 < len(rec.Content); j += 2 {
			if rec.Content[j].Value == "keep" {
				rec.Content[j+1].SetString(cfg.Recordings.Keep.String())
			}
		}
	}
	out, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// normalConfig makes an empty allow_ports and none alike.
func normalConfig(c Config) Config {
	if len(c.AllowPorts) == 0 {
		c.AllowPorts = nil
	}
	return c
}
