// Package agenttest holds the agent's test helpers: a fake of the Porthole
// API's enrollment endpoint that signs real host certificates with keys
// from package ca, the server's real embedded MQTT broker on a loopback
// port, and polling helpers.
package agenttest

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/ca"
)

// Fleet is the fleet the fake enrolls every device in.
const Fleet = "lab"

// DeviceID is the id the fake gives every device.
const DeviceID = "dev_0001"

// API answers POST /api/v1/enroll like the server does, over TLS with a
// self-signed certificate. Tests change its answer with Fail or Tamper.
type API struct {
	URL  string
	Keys *ca.Keys

	srv *httptest.Server

	mu       sync.Mutex // guards everything below
	fail     *apitype.ErrorDetail
	status   int
	tamper   func(*apitype.EnrollResponse)
	requests []apitype.EnrollRequest
}

// NewAPI starts a fake API, closed when the test ends.
func NewAPI(t testing.TB) *API {
	t.Helper()
	a := &API{Keys: NewKeys(t)}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serveHTTP))
	// Refused handshakes are what some tests want; keep them off stderr.
	a.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	a.URL = a.srv.URL
	return a
}

// NewKeys makes a set of server keys in a temporary directory.
func NewKeys(t testing.TB) *ca.Keys {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "server")
	if err := ca.Generate(dir, nil); err != nil {
		t.Fatal(err)
	}
	k, err := ca.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Fingerprint is the pin of the fake's TLS certificate.
func (a *API) Fingerprint() string { return apiclient.Fingerprint(a.srv.Certificate()) }

// Fail makes the fake answer every enrollment with this error; a nil
// detail restores normal answers.
func (a *API) Fail(status int, detail *apitype.ErrorDetail) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.fail = status, detail
}

// Tamper makes the fake edit each successful answer with f before sending
// it.
func (a *API) Tamper(f func(*apitype.EnrollResponse)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tamper = f
}

// Requests returns the enrollment requests received so far.
func (a *API) Requests() []apitype.EnrollRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]apitype.EnrollRequest(nil), a.requests...)
}

func (a *API) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/enroll" {
		writeError(w, http.StatusNotFound, apitype.CodeNotFound, "no such route")
		return
	}
	var req apitype.EnrollRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, err.Error())
		return
	}
	a.mu.Lock()
	a.requests = append(a.requests, req)
	fail, status, tamper := a.fail, a.status, a.tamper
	a.mu.Unlock()
	if fail != nil {
		writeJSON(w, status, apitype.ErrorBody{Error: *fail})
		return
	}
	resp, err := a.answer(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, err.Error())
		return
	}
	if tamper != nil {
		tamper(resp)
	}
	writeJSON(w, http.StatusOK, resp)
}

// answer enrolls req.Name in Fleet as the real server would.
func (a *API) answer(req apitype.EnrollRequest) (*apitype.EnrollResponse, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(req.PublicKey))
	if err != nil {
		return nil, err
	}
	cert, err := a.Keys.SignHostCert(pub, Fleet, req.Name, time.Now(), 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	return &apitype.EnrollResponse{
		Device: apitype.Device{
			ID: DeviceID, Fleet: Fleet, Name: req.Name, PublicKey: req.PublicKey, EnrolledAt: time.Now(),
		},
		HostCert:       KeyLine(cert),
		ControlKey:     a.Keys.ControlPublicKey(),
		UserCA:         a.Keys.UserCAPublicKey(),
		HostCA:         a.Keys.HostCAPublicKey(),
		TLSFingerprint: a.Fingerprint(),
		BrokerURL:      "mqtts://broker.example.com:8883",
		RelayAddr:      "relay.example.com:2222",
	}, nil
}

// KeyLine formats a public key or certificate as an authorized_keys line
// without the newline.
func KeyLine(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apitype.ErrorBody{Error: apitype.ErrorDetail{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
