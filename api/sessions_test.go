package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/sessioncert"
	"github.com/porthole/porthole/store"
)

func TestCreateSession(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	must(t, fx.store.SetDevicePresence(context.Background(), store.DevicePresence{DeviceID: d.ID, Online: true, At: time.Now()}))
	r := do(t, fx.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", fx.tokens["operator"],
		apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Ports: []int{22, 8080}, Reason: "ticket 9", IdleTimeoutS: 60})
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var resp apitype.CreateSessionResponse
	must(t, json.Unmarshal(r.body, &resp))
	ses := resp.Session
	if ses.State != apitype.SessionConnecting || ses.Device != d.Name || ses.Fleet != fl.Name || ses.User != "operator@example.com" ||
		ses.IdleTimeoutS != 60 || ses.MaxDurationS != 7200 || ses.Reason != "ticket 9" {
		t.Errorf("session %+v", ses)
	}
	if resp.RelayAddr != "relay.example.com:443" || resp.HostCA != fx.keys.HostCAPublicKey() ||
		len(resp.HostPrincipals) != 2 || resp.HostPrincipals[1] != d.Name+".porthole" {
		t.Errorf("response %+v", resp)
	}
	cert, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.Certificate))
	must(t, err)
	claims, err := sessioncert.Verify(fx.keys.UserCA.PublicKey(), cert, time.Now())
	must(t, err)
	if claims.Session != ses.ID || claims.DeviceID != d.ID {
		t.Errorf("certificate claims %+v", claims)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert.(*ssh.Certificate).Key))); got != engineerPublicKey {
		t.Errorf("certified key %s; want the caller's", got)
	}

	// The device reports the tunnel up: a long poll returns at once.
	done := make(chan response)
	go func() {
		done <- do(t, fx.ts, "GET", "/api/v1/sessions/"+ses.ID+"?wait=active&timeout=10s", fx.tokens["auditor"], nil)
	}()
	time.Sleep(50 * time.Millisecond)
	fx.srv.sessions.HandleState(fl.Name, d.Name, control.State{Kind: control.StateTunnelUp, Session: ses.ID})
	select {
	case r := <-done:
		var got apitype.Session
		must(t, json.Unmarshal(r.body, &got))
		if r.status != http.StatusOK || got.State != apitype.SessionActive {
			t.Errorf("long poll: %d %s", r.status, r.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll did not return when the session became active")
	}

	// Closed by the engineer, with the reason.
	r = do(t, fx.ts, "DELETE", "/api/v1/sessions/"+ses.ID, fx.tokens["operator"], nil)
	var closed apitype.Session
	must(t, json.Unmarshal(r.body, &closed))
	if closed.State != apitype.SessionClosed || closed.CloseReason != "engineer_closed" {
		t.Errorf("after DELETE: %s", r.body)
	}
	r = do(t, fx.ts, "GET", "/api/v1/sessions?fleet="+fl.Name+"&device="+d.Name, fx.tokens["auditor"], nil)
	var list []apitype.Session
	must(t, json.Unmarshal(r.body, &list))
	if len(list) != 1 || list[0].ID != ses.ID {
		t.Errorf("list: %s", r.body)
	}
}

// TestWaitShortTimeout: a long poll whose timeout ends before the session
// is even read answers the session as it is, not an error: a closed one
// (past every state) and one still connecting.
func TestWaitShortTimeout(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	must(t, fx.store.SetDevicePresence(context.Background(), store.DevicePresence{DeviceID: d.ID, Online: true, At: time.Now()}))
	open := func() apitype.Session {
		t.Helper()
		r := do(t, fx.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", fx.tokens["operator"], apitype.CreateSessionRequest{PublicKey: engineerPublicKey})
		return decodeAs[apitype.CreateSessionResponse](t, r, http.StatusCreated).Session
	}
	closed, connecting := open(), open()
	decodeAs[apitype.Session](t, do(t, fx.ts, "DELETE", "/api/v1/sessions/"+closed.ID, fx.tokens["operator"], nil), http.StatusOK)
	for _, tt := range []struct {
		id, timeout string
		want        string
	}{
		{closed.ID, "1ns", apitype.SessionClosed},
		{closed.ID, "1us", apitype.SessionClosed},
		{connecting.ID, "1ns", apitype.SessionConnecting},
	} {
		r := do(t, fx.ts, "GET", "/api/v1/sessions/"+tt.id+"?wait=active&timeout="+tt.timeout, fx.tokens["operator"], nil)
		if got := decodeAs[apitype.Session](t, r, http.StatusOK); got.ID != tt.id || got.State != tt.want {
			t.Errorf("wait=active&timeout=%s: %s %s; want %s", tt.timeout, got.ID, got.State, tt.want)
		}
	}
}

// TestCreateSessionByName: POST /api/v1/sessions finds the device by name
// among the caller's fleets, with the same access checks as by its ID: a
// device of a fleet the caller is not in is missing, an auditor is told
// which role it takes, and a name in two of the caller's fleets must be
// told apart.
func TestCreateSessionByName(t *testing.T) {
	t.Parallel()
	fl, twin := fx.newFleet(t), fx.newFleet(t)
	d := fx.newDevice(t, fl)
	fx.newDeviceNamed(t, twin, d.Name)
	must(t, fx.store.SetDevicePresence(context.Background(), store.DevicePresence{DeviceID: d.ID, Online: true, At: time.Now()}))
	alone := fx.newDevice(t, fl)
	must(t, fx.store.SetDevicePresence(context.Background(), store.DevicePresence{DeviceID: alone.ID, Online: true, At: time.Now()}))
	open := func(who, fleet, device string) response {
		return do(t, fx.ts, "POST", "/api/v1/sessions", fx.tokens[who],
			apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Device: device, Fleet: fleet})
	}
	for _, tt := range []struct {
		who, fleet, device string
		status             int
		want               string // in the error's message
	}{
		{"operator", "", alone.Name, http.StatusCreated, ""},
		{"operator", fl.Name, d.Name, http.StatusCreated, ""},
		{"admin", twin.Name, d.Name, http.StatusConflict, "has never connected"}, // the twin is offline
		{"operator", "", d.Name, http.StatusConflict, "in each of the fleets"},
		{"auditor", "", alone.Name, http.StatusForbidden, "only a fleet owner or operator can open sessions; you are an auditor of " + fl.Name},
		{"auditor", fl.Name, d.Name, http.StatusForbidden, "only a fleet owner or operator can open sessions"},
		{"other", "", alone.Name, http.StatusNotFound, fmt.Sprintf("there is no device %q in your fleets", alone.Name)},
		{"other", fl.Name, d.Name, http.StatusNotFound, fmt.Sprintf("there is no fleet %q that you belong to", fl.Name)},
		{"operator", fl.Name, "no-such-device", http.StatusNotFound, `there is no device "no-such-device" in fleet ` + fl.Name},
		{"operator", "", "", http.StatusBadRequest, "device is required"},
	} {
		r := open(tt.who, tt.fleet, tt.device)
		if r.status != tt.status {
			t.Errorf("%s opening %q in %q: %d %s; want %d", tt.who, tt.device, tt.fleet, r.status, r.body, tt.status)
			continue
		}
		if tt.status == http.StatusCreated {
			if s := decodeAs[apitype.CreateSessionResponse](t, r, http.StatusCreated).Session; s.Device != tt.device || s.Fleet != fl.Name {
				t.Errorf("%s opening %q in %q: a session on %s.%s", tt.who, tt.device, tt.fleet, s.Device, s.Fleet)
			}
		} else if msg := r.errorBody(t).Message; !strings.Contains(msg, tt.want) {
			t.Errorf("%s opening %q in %q: %q; want %q", tt.who, tt.device, tt.fleet, msg, tt.want)
		}
	}
	// The route by ID names its device in its path only.
	r := do(t, fx.ts, "POST", "/api/v1/devices/"+alone.ID+"/sessions", fx.tokens["operator"],
		apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Device: d.Name})
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorBody(t).Message, "leave out device and fleet") {
		t.Errorf("a device name on the route by ID: %d %s; want 400", r.status, r.body)
	}
}

func TestCreateSessionRefused(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	online, offline := fx.newDevice(t, fl), fx.newDevice(t, fl)
	must(t, fx.store.SetDevicePresence(context.Background(), store.DevicePresence{DeviceID: online.ID, Online: true, At: time.Now()}))
	cert := func() string {
		r := do(t, fx.ts, "POST", "/api/v1/devices/"+online.ID+"/sessions", fx.tokens["operator"],
			apitype.CreateSessionRequest{PublicKey: engineerPublicKey})
		var resp apitype.CreateSessionResponse
		must(t, json.Unmarshal(r.body, &resp))
		return resp.Certificate
	}()
	for _, tt := range []struct {
		name   string
		device string
		req    apitype.CreateSessionRequest
		status int
		want   string
	}{
		{"an offline device", offline.ID, apitype.CreateSessionRequest{PublicKey: engineerPublicKey}, http.StatusConflict, "has never connected"},
		{"no key", online.ID, apitype.CreateSessionRequest{}, http.StatusBadRequest, "public_key is required"},
		{"not a key", online.ID, apitype.CreateSessionRequest{PublicKey: "ssh-ed25519 garbage"}, http.StatusBadRequest, "not an SSH public key"},
		{"a certificate", online.ID, apitype.CreateSessionRequest{PublicKey: cert}, http.StatusBadRequest, "use an ed25519"},
		{"a bad port", online.ID, apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Ports: []int{70000}}, http.StatusBadRequest, "not a port"},
		{"a negative limit", online.ID, apitype.CreateSessionRequest{PublicKey: engineerPublicKey, MaxDurationS: -1}, http.StatusBadRequest, "negative"},
	} {
		r := do(t, fx.ts, "POST", "/api/v1/devices/"+tt.device+"/sessions", fx.tokens["operator"], tt.req)
		if r.status != tt.status || !strings.Contains(r.errorBody(t).Message, tt.want) {
			t.Errorf("%s: %d %s; want %d and %q", tt.name, r.status, r.body, tt.status, tt.want)
		}
	}
	r := do(t, fx.ts, "GET", "/api/v1/sessions/ses_missing?wait=sleeping", fx.tokens["operator"], nil)
	if r.status != http.StatusNotFound {
		t.Errorf("a missing session: %d", r.status)
	}
}
