package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole/porthole/internal/tests3"
	"github.com/porthole/porthole/recstore"
)

// TestRecordingsS3: portholed opens the bucket recordings names with the
// credentials recordings_s3 gives, and refuses to start, naming what to
// fix, when the bucket, the credentials or their files are wrong.
func TestRecordingsS3(t *testing.T) {
	t.Parallel()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret, wrong, empty := write("secret", tests3.SecretKey+"\n"), write("wrong", "not-the-secret\n"), write("empty", "\n")
	good := RecordingsS3Config{Endpoint: srv.Endpoint, Region: tests3.Region, AccessKeyID: tests3.AccessKey, SecretAccessKeyFile: secret}
	for _, tt := range []struct {
		name       string
		recordings string
		edit       func(*RecordingsS3Config)
		wantErr    string
	}{
		{name: "the secret in a file", recordings: "s3://" + bucket + "/rec"},
		{name: "the secret in the config", recordings: "s3://" + bucket, edit: func(c *RecordingsS3Config) {
			c.SecretAccessKeyFile, c.SecretAccessKey = "", tests3.SecretKey
		}},
		{name: "no bucket", recordings: "s3://porthole-rec/x",
			wantErr: "recordings s3://porthole-rec/x: s3store: the S3 bucket porthole-rec does not exist at " + srv.Endpoint + ": create it, or name another (or fix recordings)"},
		{name: "a wrong secret", recordings: "s3://" + bucket, edit: func(c *RecordingsS3Config) { c.SecretAccessKeyFile = wrong },
			wantErr: `refused access key "` + tests3.AccessKey + `" to bucket ` + bucket + ": check the key, its secret, and its rights to the bucket (recordings_s3.access_key_id and its secret)"},
		{name: "an empty secret file", recordings: "s3://" + bucket, edit: func(c *RecordingsS3Config) { c.SecretAccessKeyFile = empty },
			wantErr: "recordings_s3.secret_access_key_file " + empty + " is empty"},
		{name: "a missing secret file", recordings: "s3://" + bucket, edit: func(c *RecordingsS3Config) { c.SecretAccessKeyFile = filepath.Join(dir, "nope") },
			wantErr: "reading recordings_s3.secret_access_key_file"},
		{name: "no credentials", recordings: "s3://" + bucket, edit: func(c *RecordingsS3Config) { c.AccessKeyID, c.SecretAccessKeyFile = "", "" },
			wantErr: "no credentials for the bucket: set recordings_s3.access_key_id and recordings_s3.secret_access_key_file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{name: "a CA file without PEM", recordings: "s3://" + bucket, edit: func(c *RecordingsS3Config) { c.CAFile = secret },
			wantErr: "recordings_s3.ca_file " + secret + " holds no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			if tt.edit != nil {
				tt.edit(&c)
			}
			st, err := openRecordings(t.Context(), &Config{Recordings: tt.recordings, RecordingsS3: c})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("openRecordings: %v; want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			k := recstore.Key{Fleet: "flt_1", Session: "ses_1"}
			if err := st.Append(t.Context(), k, "events.jsonl", 0, []byte("{}\n")); err != nil {
				t.Fatal(err)
			}
		})
	}

	// Behind TLS with a certificate of its own, trusted through ca_file.
	tlsSrv := tests3.StartTLS(t)
	tlsBucket := tlsSrv.Bucket(t)
	c := good
	c.Endpoint, c.CAFile = tlsSrv.Endpoint, tlsSrv.CAFile
	if _, err := openRecordings(t.Context(), &Config{Recordings: "s3://" + tlsBucket, RecordingsS3: c}); err != nil {
		t.Errorf("TLS with recordings_s3.ca_file: %v", err)
	}
	c.CAFile = ""
	if _, err := openRecordings(t.Context(), &Config{Recordings: "s3://" + tlsBucket, RecordingsS3: c}); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority (name the authority that signs its certificate in recordings_s3.ca_file)") {
		t.Errorf("TLS without recordings_s3.ca_file: %v; want the certificate refused, and ca_file named", err)
	}

	// The whole server: Open refuses to start on a bucket that is not
	// there, before it takes anything.
	data := filepath.Join(t.TempDir(), "data")
	if err := Init(context.Background(), InitOptions{DataDir: data, AdminEmail: "ops@example.com", PublicURL: "https://porthole.test:9443"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte("data_dir: " + data + "\npublic_url: https://porthole.test:9443\nrecordings: s3://porthole-rec\nrecordings_s3:\n  endpoint: " + srv.Endpoint +
		"\n  access_key_id: " + tests3.AccessKey + "\n  secret_access_key_file: " + secret + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), cfg, discardLogger()); err == nil {
		s.Close()
		t.Fatal("the server opened on a bucket that does not exist")
	} else if !strings.Contains(err.Error(), "the S3 bucket porthole-rec does not exist") {
		t.Fatalf("Open: %v; want it to say the bucket does not exist", err)
	}
	cfg.Recordings = "s3://" + bucket + "/rec"
	s, err := Open(t.Context(), cfg, discardLogger())
	if err != nil {
		t.Fatalf("Open on the bucket: %v", err)
	}
	s.Close()
}
