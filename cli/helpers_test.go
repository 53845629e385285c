package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
)

// result is what one in-process run of porthole printed.
type result struct {
	stdout, stderr string
	err            error
}

// runCLI runs porthole in-process with env as its whole environment and
// stdin as its input.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, IO{
		In:     strings.NewReader(stdin),
		Out:    &out,
		Err:    &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return result{stdout: out.String(), stderr: errb.String(), err: err}
}

// mustRun is runCLI that fails the test when the command fails.
func mustRun(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	r := runCLI(t, env, stdin, args...)
	if r.err != nil {
		t.Fatalf("porthole %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r
}

// testEnv is an environment with its own config dir and nothing else.
func testEnv(t *testing.T) map[string]string {
	return map[string]string{"XDG_CONFIG_HOME": t.TempDir()}
}

// fakeAPI is a TLS server answering the API routes a test gives it; every
// request is recorded. Unknown routes answer 404 in the API's error form.
// Each has its own self-signed certificate, which a test may swap.
type fakeAPI struct {
	*httptest.Server
	fingerprint string
	cert        atomic.Pointer[tls.Certificate]
	requests    chan string // "METHOD /path?query", buffered
}

// swapCert makes the server present a new certificate from now on, and
// returns its fingerprint.
func (f *fakeAPI) swapCert(t *testing.T) string {
	cert := newTestCert(t)
	f.cert.Store(&cert)
	return apiclient.Fingerprint(cert.Leaf)
}

// newTestCert makes a self-signed certificate for 127.0.0.1.
func newTestCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "porthole test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func newFakeAPI(t *testing.T, routes map[string]http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{requests: make(chan string, 100)}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, http.StatusNotFound, apitype.ErrorBody{Error: apitype.ErrorDetail{Code: apitype.CodeNotFound, Message: "no such thing"}})
	})
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case f.requests <- r.Method + " " + r.URL.RequestURI():
		default:
		}
		mux.ServeHTTP(w, r)
	}))
	f.fingerprint = f.swapCert(t)
	// Not StartTLS: it would add httptest's own certificate, shared by
	// every test server, in front of ours.
	f.Listener = tls.NewListener(f.Listener, &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return f.cert.Load(), nil },
	})
	f.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests want
	f.Start()
	f.URL = "https://" + f.Listener.Addr().String()
	t.Cleanup(f.Close)
	return f
}

// seen returns the requests made so far.
func (f *fakeAPI) seen() []string {
	var out []string
	for {
		select {
		case r := <-f.requests:
			out = append(out, r)
		default:
			return out
		}
	}
}

// loggedIn is an environment logged in to f with a token, as the
// environment variables do it.
func (f *fakeAPI) loggedIn(t *testing.T) map[string]string {
	env := testEnv(t)
	env[envServer] = f.URL
	env[envToken] = "pht_test"
	env[envFingerprint] = f.fingerprint
	return env
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// answer is a handler that answers v with 200.
func answer(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { writeTestJSON(w, http.StatusOK, v) }
}

// apiError is a handler that answers an API error.
func apiError(status int, code, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeTestJSON(w, status, apitype.ErrorBody{Error: apitype.ErrorDetail{Code: code, Message: msg}})
	}
}

func isNotLoggedIn(err error) bool { return errors.Is(err, errNotLoggedIn) }
