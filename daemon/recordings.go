package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/porthole/porthole/recstore"
	"github.com/porthole/porthole/recstore/s3store"
)

// openRecordings opens the object storage that cfg.Recordings names, and
// checks that it will take uploads; nil when the recordings are kept on
// disk (cfg.RecordingsDir), which the API opens itself.
func openRecordings(ctx context.Context, cfg *Config) (recstore.Store, error) {
	if cfg.Recordings == "" {
		return nil, nil
	}
	c := cfg.RecordingsS3
	secret, err := recordingsSecret(c)
	if err != nil {
		return nil, err
	}
	if !c.AWSRole && (c.AccessKeyID == "" || secret == "") {
		return nil, fmt.Errorf("recordings %s: no credentials for the bucket: set recordings_s3.access_key_id and "+
			"recordings_s3.secret_access_key_file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in portholed's environment, "+
			"or recordings_s3.aws_role on AWS", cfg.Recordings)
	}
	var transport http.RoundTripper
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading recordings_s3.ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("recordings_s3.ca_file %s holds no PEM certificate", c.CAFile)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		transport = t
	}
	st, err := s3store.Open(ctx, s3store.Config{
		URL:             cfg.Recordings,
		Endpoint:        c.Endpoint,
		Region:          c.Region,
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: secret,
		SessionToken:    c.sessionToken,
		AWSRole:         c.AWSRole,
		RoleEndpoint:    c.roleEndpoint,
		Transport:       transport,
	})
	var hint string
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknownCA):
		hint = " (name the authority that signs its certificate in recordings_s3.ca_file)"
	case errors.Is(err, s3store.ErrNoBucket):
		hint = " (or fix recordings)"
	case errors.Is(err, s3store.ErrAccessDenied) && c.AWSRole:
		hint = " (the role's policy; or turn recordings_s3.aws_role off and give a key)"
	case errors.Is(err, s3store.ErrAccessDenied):
		hint = " (recordings_s3.access_key_id and its secret)"
	case errors.Is(err, s3store.ErrNoConditionalWrites):
		hint = " (recordings_s3.endpoint), or keep the recordings on disk (recordings_dir)"
	}
	if err != nil {
		return nil, fmt.Errorf("recordings %s: %w%s", cfg.Recordings, err, hint)
	}
	return st, nil
}

// recordingsSecret is the object storage's secret key:
// recordings_s3.secret_access_key (or from the environment, see
// Config.ApplyEnv), or the first line of secret_access_key_file.
func recordingsSecret(c RecordingsS3Config) (string, error) {
	return configSecret("recordings_s3.secret_access_key_file", c.SecretAccessKey, c.SecretAccessKeyFile)
}

// configSecret is a secret the config holds (value) or names the file
// of (file, the key named key): the file's first line.
func configSecret(key, value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	secret, _, _ := strings.Cut(strings.TrimRight(string(data), "\r\n"), "\n")
	if secret == "" {
		return "", fmt.Errorf("%s %s is empty", key, file)
	}
	return secret, nil
}
