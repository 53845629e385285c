package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

// authenticator is a software WebAuthn authenticator and the browser's
// part around it (the client data), written for the tests: ECDSA P-256
// keys it makes and keeps, a signature counter per key, and every field
// in the test's hands, as they would be in an attacker's own client. What
// Chromium's virtual authenticator does in the e2e test, this does in
// process.
type authenticator struct {
	origin string // the origin the browser puts in the client data
	rpID   string // the RP ID whose hash the authenticator signs
	uv     bool   // it verifies its user (a PIN, a fingerprint)
	// format is the attestation it makes: "none", or "packed" (self
	// attestation: signed by the new key itself).
	format string
	keys   map[string]*softKey // by credential ID
}

// softKey is one credential the authenticator holds.
type softKey struct {
	id         []byte
	key        *ecdsa.PrivateKey
	userHandle []byte
	count      uint32
}

func newAuthenticator() *authenticator {
	u, _ := url.Parse(testPublicURL)
	return &authenticator{origin: testPublicURL, rpID: u.Hostname(), uv: true, format: "none", keys: map[string]*softKey{}}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64u(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	must(t, err)
	return b
}

func (a *authenticator) clientData(t *testing.T, typ, challenge string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	must(t, err)
	return b
}

// authData is the authenticator data: the RP ID's hash, flags, the
// counter and, for a new key, its attested credential data.
func (a *authenticator) authData(t *testing.T, k *softKey, attested bool) []byte {
	t.Helper()
	rp := sha256.Sum256([]byte(a.rpID))
	flags := byte(0x01) // UP
	if a.uv {
		flags |= 0x04
	}
	if attested {
		flags |= 0x40
	}
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID: not told
		out = binary.BigEndian.AppendUint16(out, uint16(len(k.id)))
		out = append(out, k.id...)
		cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1,
			-2: k.key.X.FillBytes(make([]byte, 32)), -3: k.key.Y.FillBytes(make([]byte, 32))})
		must(t, err)
		out = append(out, cose...)
	}
	return out
}

func (k *softKey) sign(t *testing.T, authData, clientData []byte) []byte {
	t.Helper()
	cdh := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte{}, authData...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	must(t, err)
	return sig
}

// create makes a new key for the options, as navigator.credentials.create
// would, and keeps it.
func (a *authenticator) create(t *testing.T, o apitype.PasskeyCreationOptions) (apitype.PasskeyAttestation, *softKey) {
	t.Helper()
	id := make([]byte, 32)
	rand.Read(id)
	return a.createWith(t, o, &softKey{id: id, key: newKey(t), userHandle: unb64u(t, o.UserID)})
}

// newKey is a new P-256 key.
func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	return key
}

// createWith registers k, whatever its ID (an attacker's choice).
func (a *authenticator) createWith(t *testing.T, o apitype.PasskeyCreationOptions, k *softKey) (apitype.PasskeyAttestation, *softKey) {
	t.Helper()
	a.keys[string(k.id)] = k
	cd := a.clientData(t, "webauthn.create", o.Challenge)
	ad := a.authData(t, k, true)
	stmt := map[string]any{}
	if a.format == "packed" {
		stmt = map[string]any{"alg": -7, "sig": k.sign(t, ad, cd)}
	}
	obj, err := cbor.Marshal(map[string]any{"fmt": a.format, "attStmt": stmt, "authData": ad})
	must(t, err)
	return apitype.PasskeyAttestation{ID: b64u(k.id), ClientDataJSON: b64u(cd), AttestationObject: b64u(obj), Transports: []string{"internal"}}, k
}

// get signs the request's challenge with k, as navigator.credentials.get
// would once its person picked k; the counter moves on first.
func (a *authenticator) get(t *testing.T, o apitype.PasskeyRequestOptions, k *softKey) apitype.PasskeyAssertion {
	t.Helper()
	k.count++
	cd := a.clientData(t, "webauthn.get", o.Challenge)
	ad := a.authData(t, k, false)
	return apitype.PasskeyAssertion{ID: b64u(k.id), ClientDataJSON: b64u(cd), AuthenticatorData: b64u(ad),
		Signature: b64u(k.sign(t, ad, cd)), UserHandle: b64u(k.userHandle)}
}

// webClient is a browser on the console's page: a cookie jar, and every
// request from the console's own origin with the session's CSRF header.
type webClient struct {
	ts  *testServer
	jar *cookiejar.Jar
	c   *http.Client
}

func newWebClient(t *testing.T, ts *testServer) *webClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	must(t, err)
	c := *ts.ts.Client()
	c.Jar = jar
	return &webClient{ts: ts, jar: jar, c: &c}
}

// cookie is the value of the browser's cookie name ("" if none).
func (b *webClient) cookie(t *testing.T, name string) string {
	t.Helper()
	u, err := url.Parse(b.ts.ts.URL)
	must(t, err)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *webClient) do(t *testing.T, method, path string, body any) response {
	t.Helper()
	req := newRequest(t, t.Context(), method, b.ts.ts.URL+path, body)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if csrf := b.cookie(t, apitype.ConsoleCSRFCookie); csrf != "" {
		req.Header.Set(apitype.CSRFHeader, csrf)
	}
	resp, err := b.c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	return response{status: resp.StatusCode, header: resp.Header, body: readAll(t, resp)}
}

// login logs u in with password and TOTP; the clock moves to the next
// TOTP step.
func (b *webClient) login(t *testing.T, u *store.User) {
	t.Helper()
	decodeAs[apitype.ConsoleLoginResponse](t, b.do(t, "POST", "/api/v1/console/login",
		loginBody(u, testPassword, totpCode(t, u, b.ts.clock.Now()))), http.StatusOK)
	b.ts.clock.Advance(30 * time.Second)
}
