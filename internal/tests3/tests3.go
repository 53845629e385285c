// Package tests3 runs an S3-compatible object store of a test's own: the
// versitygw gateway (Apache-2.0) over a temporary directory, on a free
// loopback port, with a fresh bucket per caller.
//
// scripts/setup.sh builds versitygw, pinned, into the module's .tools
// directory, where Start finds it (PORTHOLE_VERSITYGW names another). A
// test that starts one is skipped where it is not installed, except where
// CI=true or PORTHOLE_REQUIRE_S3=1, which make it fail: CI must not pass by
// skipping. Only tests may import this package (a test in the module root
// checks).
package tests3

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/porthole/porthole/internal/freeport"
)

// The root account of every server Start runs.
const (
	AccessKey = "porthole-test"
	SecretKey = "porthole-test-secret"
)

// Region is the region the servers say they are in.
const Region = "us-east-1"

// startTimeout bounds the wait for a started server to accept connections.
const startTimeout = 10 * time.Second

// Server is a versitygw process of the test's own.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:<port>, or https://
	// from StartTLS.
	Endpoint string
	// Dir holds the buckets, one directory each, their objects as files.
	Dir string
	// CAFile, from StartTLS, is the PEM file of the server's self-signed
	// certificate, for 127.0.0.1: what a client must trust. Empty
	// without TLS.
	CAFile string

	bin     string
	addr    string // 127.0.0.1:<port>
	keyFile string // the key of CAFile's certificate

	out    syncBuffer // the server's output, shown when the test fails
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start runs versitygw on a free port and returns once it accepts
// connections. It stops it when the test ends, and shows its output if
// the test failed.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartTLS is Start with the server behind TLS, with a certificate of its
// own (CAFile).
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, withTLS bool) *Server {
	t.Helper()
	s := &Server{bin: Binary(t), Dir: t.TempDir()}
	scheme := "http"
	if withTLS {
		scheme = "https"
		s.CAFile, s.keyFile = selfSigned(t)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("versitygw output:\n%s", s.out.String())
		}
	})
	// A free port can be taken by someone else before versitygw binds
	// it: try again with others.
	for try := 0; ; try++ {
		p, err := freeport.Pick()
		if err != nil {
			t.Fatal(err)
		}
		s.addr = fmt.Sprintf("127.0.0.1:%d", p)
		s.Endpoint = scheme + "://" + s.addr
		err = s.start()
		if err == nil {
			return s
		}
		if try == 2 {
			t.Fatalf("starting versitygw: %v", err)
		}
	}
}

// Binary is the versitygw program: $PORTHOLE_VERSITYGW, the module's
// .tools/versitygw (scripts/setup.sh builds it there), or one on $PATH. It
// skips t when there is none, or fails it where CI requires S3 tests.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PORTHOLE_VERSITYGW"); p != "" {
		return p
	}
	if root, err := moduleRoot(); err == nil {
		if p := filepath.Join(root, ".tools", "versitygw"); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	const how = "run scripts/setup.sh, which builds it into .tools"
	if os.Getenv("CI") == "true" || os.Getenv("PORTHOLE_REQUIRE_S3") == "1" {
		t.Fatalf("versitygw, the S3 server of the tests, is not installed, and CI=true or PORTHOLE_REQUIRE_S3=1 requires it: %s", how)
	}
	t.Skipf("skipping: versitygw, the S3 server of the tests, is not installed (%s)", how)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// start runs versitygw on s.addr and waits until it accepts.
func (s *Server) start() error {
	args := []string{"--port", s.addr, "--access", AccessKey, "--secret", SecretKey, "--region", Region, "--quiet"}
	if s.CAFile != "" {
		args = append(args, "--cert", s.CAFile, "--key", s.keyFile)
	}
	s.cmd = exec.Command(s.bin, append(args, "posix", s.Dir)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	// A test binary that dies must not leave its server running.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	s.exited = exited
	go func() {
		_ = s.cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("versitygw exited: %s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("versitygw does not accept connections on %s", s.addr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop kills the server at once, like a crash, and waits for it. Stopping
// a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// Restart kills the server and starts it again on the same port and
// directory: what it held is still there.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("restarting versitygw: %v", err)
	}
}

// Client is an S3 client of the server's root account, for a test to make
// and look at what it holds.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	opts := &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: Region}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
		opts.Secure, opts.Transport = true, tr
	}
	c, err := minio.New(s.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// selfSigned writes a certificate for 127.0.0.1, valid for a day, and its
// key, and returns their files.
func selfSigned(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tests3"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path string
		blk  *pem.Block
	}{{certFile, &pem.Block{Type: "CERTIFICATE", Bytes: der}}, {keyFile, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(f.blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// Bucket makes a new, empty bucket with a name of its own and returns the
// name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	crand.Read(b)
	name := "test-" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region}); err != nil {
		t.Fatalf("making bucket %s: %v", name, err)
	}
	return name
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
