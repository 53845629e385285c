package daemon

import (
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseConfig: portholed's YAML config. ParseConfig never panics; the
// defaults it fills in are final (validating its result again changes
// nothing), and written back as YAML it parses to the same Config.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"data_dir: /var/lib/portholed\npublic_url: https://porthole.example.com:9443\n",
		"data_dir: d\nlisten: 127.0.0.1:8443\ndatabase: postgres://u:p@db/porthole\ntls: {cert_file: c.pem, key_file: k.pem}\n" +
			"token_ttl: 1h\nrecordings_max_session: 81MiB\nrecordings_max_file: 1024\nlog: {level: debug, format: json}\n",
		"data_dir: d\nbroker:\n  url: mqtts://mqtt.example.com\n  username: portholed\n  password_file: pw\n  ca_file: ca.pem\n  share_group: g-1\n",
		"data_dir: d\nbroker: {url: mqtt://10.0.0.1:1883, public_url: mqtts://broker.example.com}\nrelay: {listen: ':443', public_addr: relay.example.com:443}\n",
		"data_dir: d\nsessions: {idle_timeout: 5m, max_duration: 8h, connect_timeout: 1s}\nrecordings_max_file: 9999999999GiB\n",
		"data_dir: d\npublic_url: 'https://[::1]:0'\nbroker: {listen: '[::1]:x'}\n",
		"data_dir: d\nrecordings: s3://porthole-rec/prod\nrecordings_s3: {endpoint: 'https://minio:9000', region: eu-west-1, access_key_id: k, secret_access_key_file: s, ca_file: ca.pem}\n",
		"data_dir: d\nrecordings: s3://porthole-rec\nrecordings_dir: ''\nrecordings_s3: {access_key_id: k, secret_access_key: s}\n",
		"data_dir: [d]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		again := *cfg
		if err := again.Validate(); err != nil || !reflect.DeepEqual(again, *cfg) {
			t.Fatalf("%q parsed as %+v; validated again: %+v, %v", data, *cfg, again, err)
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig(out)
		if err != nil || !reflect.DeepEqual(*back, *cfg) {
			t.Fatalf("%q parsed as %+v, written back as %q, which parses as %+v, %v", data, *cfg, out, back, err)
		}
	})
}
