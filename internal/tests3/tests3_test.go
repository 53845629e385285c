package tests3

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

func dials(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestStartStopRestart: a started server keeps objects in a bucket of the
// test's own, on a free loopback port; after a crash and a restart on the
// same port they are still there.
func TestStartStopRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %s; want http://127.0.0.1:<port>", s.Endpoint)
	}
	bucket := s.Bucket(t)
	if other := s.Bucket(t); other == bucket {
		t.Fatalf("Bucket gave %s twice", bucket)
	}
	c := s.Client(t)
	if _, err := c.PutObject(t.Context(), bucket, "a/b", bytes.NewReader([]byte("kept")), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if dials(s.addr) {
		t.Errorf("%s accepts connections after Stop", s.addr)
	}
	s.Stop() // stopping twice does nothing
	s.Restart(t)
	o, err := c.GetObject(t.Context(), bucket, "a/b", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got, err := io.ReadAll(o); err != nil || string(got) != "kept" {
		t.Fatalf("after Restart: %q, %v; want \"kept\"", got, err)
	}
}

// TestStartTLS: a server behind TLS answers a client that trusts CAFile.
func TestStartTLS(t *testing.T) {
	t.Parallel()
	s := StartTLS(t)
	if !strings.HasPrefix(s.Endpoint, "https://127.0.0.1:") || s.CAFile == "" {
		t.Fatalf("Endpoint = %s, CAFile = %q; want https://127.0.0.1:<port> and a CA file", s.Endpoint, s.CAFile)
	}
	bucket := s.Bucket(t)
	if _, err := s.Client(t).PutObject(t.Context(), bucket, "x", bytes.NewReader([]byte("over TLS")), 8, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}
