package api

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// doAuthz sends a request to base with an Authorization header as given.
func doAuthz(t *testing.T, base, method, path, authz, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	must(t, err)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := fx.ts.Client().Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// TestOwnerLink: a device makes an owner link; with it its owner reads the
// device's audit events, sessions and recordings, not another device's;
// a new link replaces the old one.
func TestOwnerLink(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	neighbour, nkey := newKeyedDevice(t, fl)
	ses, theirs := fx.newSession(t, d), fx.newSession(t, neighbour)
	dev := recDevice(t, fx.ts.URL, d, key)
	cast := "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.1, \"o\", \"uptime\\r\\n\"]\n"
	if _, err := dev.UploadRecordingFile(ctx, ses.ID, "0001-pty.cast", 0, []byte(cast)); err != nil {
		t.Fatal(err)
	}
	if _, err := recDevice(t, fx.ts.URL, neighbour, nkey).UploadRecordingFile(ctx, theirs.ID, "0001-pty.cast", 0, []byte(cast)); err != nil {
		t.Fatal(err)
	}

	if _, err := dev.CompleteRecording(ctx, ses.ID, map[string]int64{"0001-pty.cast": int64(len(cast))}); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*store.Device{d, neighbour} {
		must(t, fx.store.AppendAudit(ctx, audit.Event{Kind: audit.SessionActive, Actor: audit.Device(x.ID, fl.Name, x.Name),
			Fleet: fl.Name, Device: x.Name}))
	}

	link, err := dev.OwnerLink(ctx)
	must(t, err)
	if !strings.HasPrefix(link.Token, "pho_") || link.Path != "/owner/" || time.Until(link.ExpiresAt) < 29*24*time.Hour {
		t.Fatalf("link = %+v", link)
	}
	owner := "Owner " + link.Token
	get := func(path string) response {
		t.Helper()
		return doAuthz(t, fx.ts.URL, "GET", path, owner, "")
	}

	me := decodeAs[apitype.Owner](t, get("/api/v1/owner"), http.StatusOK)
	if me.Device != d.Name || me.Fleet != fl.Name || !me.ExpiresAt.Equal(link.ExpiresAt) {
		t.Errorf("GET /api/v1/owner = %+v", me)
	}
	evs := decodeAs[[]apitype.AuditEvent](t, get("/api/v1/owner/audit?limit=1000"), http.StatusOK)
	var kinds []string
	for _, e := range evs {
		if e.DeviceID != d.ID {
			t.Errorf("an event of device %s (%s) reached %s's owner", e.Device, e.Kind, d.Name)
		}
		kinds = append(kinds, e.Kind)
	}
	for _, want := range []string{"recording_uploaded", "session_active", "owner_link_created"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("the owner's audit events %v lack %s", kinds, want)
		}
	}
	list := decodeAs[[]apitype.Recording](t, get("/api/v1/owner/sessions"), http.StatusOK)
	if len(list) != 1 || list[0].Session.ID != ses.ID || list[0].FileCount != 1 || list[0].Files != nil {
		t.Errorf("the owner's sessions = %+v; want %s with one file", list, ses.ID)
	}
	rec := decodeAs[apitype.Recording](t, get("/api/v1/owner/sessions/"+ses.ID+"/recording"), http.StatusOK)
	if len(rec.Files) != 1 || rec.Files[0].Name != "0001-pty.cast" {
		t.Errorf("the owner's recording = %+v", rec)
	}
	if r := get("/api/v1/owner/sessions/" + ses.ID + "/recording/files/0001-pty.cast"); r.status != http.StatusOK || string(r.body) != cast {
		t.Errorf("the owner's cast: %d %q", r.status, r.body)
	}

	// Another device's session, even of the same fleet.
	for _, path := range []string{"/recording", "/recording/files/0001-pty.cast"} {
		get("/api/v1/owner/sessions/"+theirs.ID+path).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	}
	// Not as a bearer token, not as a device credential.
	doAuthz(t, fx.ts.URL, "GET", "/api/v1/me", "Bearer "+link.Token, "").wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	doAuthz(t, fx.ts.URL, "GET", "/api/v1/owner", "Owner pho_nosuchtoken", "").wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)

	// A new link replaces the old one.
	again, err := dev.OwnerLink(ctx)
	must(t, err)
	get("/api/v1/owner").wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	if r := doAuthz(t, fx.ts.URL, "GET", "/api/v1/owner", "Owner "+again.Token, ""); r.status != http.StatusOK {
		t.Errorf("the new link: %d %s", r.status, r.body)
	}
}

// TestOwnerTokenReadsNothingElse walks the route table with an owner token,
// the IDs filled in with its own device's: every route but the owner's
// refuses it, and public routes answer it as they answer anyone. Nothing
// changes in the store.
func TestOwnerTokenReadsNothingElse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	fx.newRecording(t, ses)
	link, err := recDevice(t, fx.ts.URL, d, key).OwnerLink(ctx)
	must(t, err)
	owner := "Owner " + link.Token
	before := ownerWorld(t, fl, d)

	ids := map[string]string{"{fleet}": fl.Name, "{id}": ses.ID, "{user}": fx.users["auditor"].ID, "{name}": "meta.json"}
	deviceIDs := map[string]string{"/api/v1/devices/{id}": d.ID}
	for _, rt := range fx.srv.routes {
		path := rt.path
		for prefix, id := range deviceIDs {
			if strings.HasPrefix(path, prefix) {
				path = strings.Replace(path, "{id}", id, 1)
			}
		}
		for k, v := range ids {
			path = strings.ReplaceAll(path, k, v)
		}
		body := ""
		if rt.method == "POST" || rt.method == "PUT" {
			body = "{}"
		}
		r := doAuthz(t, fx.ts.URL, rt.method, path, owner, body)
		switch rt.access {
		case ownerAuth:
			if r.status != http.StatusOK {
				t.Errorf("%s (%s): %d %s; want 200", rt.pattern(), path, r.status, r.body)
			}
		case public:
			if rt.quiet {
				continue // probes and metrics change between two calls
			}
			if anon := doAuthz(t, fx.ts.URL, rt.method, path, "", body); r.status != anon.status {
				t.Errorf("%s: %d with the owner token, %d without; want the same", rt.pattern(), r.status, anon.status)
			}
		default:
			if r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
				t.Errorf("%s (%s): %d %s; want 401 or 403", rt.pattern(), path, r.status, r.body)
			}
		}
	}
	if after := ownerWorld(t, fl, d); after != before {
		t.Errorf("the owner token changed the store:\nbefore %s\nafter  %s", before, after)
	}
}

// ownerWorld is what an owner token could try to change.
func ownerWorld(t *testing.T, fl *store.Fleet, d *store.Device) string {
	t.Helper()
	ctx := t.Context()
	var state struct {
		Device   *store.Device
		Sessions []*store.Session
		Requests []*store.SupportRequest
		Members  []*store.Membership
		Tokens   []*store.EnrollmentToken
		Recs     []*store.Recording
	}
	var err error
	state.Device, err = fx.store.GetDevice(ctx, d.ID)
	must(t, err)
	state.Device.LastSeen = time.Time{}
	state.Sessions, err = fx.store.ListSessions(ctx, store.SessionFilter{DeviceID: d.ID})
	must(t, err)
	state.Requests, err = fx.store.ListSupportRequests(ctx, store.SupportRequestFilter{DeviceID: d.ID})
	must(t, err)
	state.Members, err = fx.store.FleetMembers(ctx, fl.ID)
	must(t, err)
	state.Tokens, err = fx.store.ListEnrollmentTokens(ctx, fl.ID)
	must(t, err)
	state.Recs, err = fx.store.ListRecordings(ctx, store.RecordingFilter{DeviceID: d.ID})
	must(t, err)
	b, err := json.Marshal(state)
	must(t, err)
	return string(b)
}

// TestOwnerLinkExpires: a link past its 30 days reads nothing.
func TestOwnerLinkExpires(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Config{})
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	link, err := recDevice(t, srv.ts.URL, d, key).OwnerLink(t.Context())
	must(t, err)
	if r := doAuthz(t, srv.ts.URL, "GET", "/api/v1/owner", "Owner "+link.Token, ""); r.status != http.StatusOK {
		t.Fatalf("a new link: %d %s", r.status, r.body)
	}
	srv.clock.Advance(OwnerLinkTTL)
	doAuthz(t, srv.ts.URL, "GET", "/api/v1/owner", "Owner "+link.Token, "").wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
}

// TestOwnerPage: the page is served with a policy that runs only its own
// script and reaches only this server.
func TestOwnerPage(t *testing.T) {
	t.Parallel()
	r := do(t, fx.ts, "GET", "/owner/", "", nil)
	csp := r.header.Get("Content-Security-Policy")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(csp, "script-src 'sha256-") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("GET /owner/: %d, %v", r.status, r.header)
	}
	if !strings.Contains(string(r.body), `"Authorization": "Owner " + token`) || strings.Contains(string(r.body), "innerHTML") {
		t.Error("the page does not call the API with the owner token, or writes HTML from data")
	}
}
