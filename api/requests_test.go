package api

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

// deviceClient calls the API as an enrolled device.
func deviceClient(t *testing.T, fleet string, d *store.Device, key ed25519.PrivateKey) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(fx.ts.URL, apiclient.Options{Fingerprint: fx.keys.TLSFingerprint(),
		Device: &apiclient.DeviceCredentials{Fleet: fleet, Device: d.Name, Key: key}})
	must(t, err)
	return c
}

func userClient(t *testing.T, who string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(fx.ts.URL, apiclient.Options{Fingerprint: fx.keys.TLSFingerprint(), Token: fx.tokens[who]})
	must(t, err)
	return c
}

// TestSupportQueue walks a support request from the device's post through
// an engineer's claim to the device closing it, and checks what each side
// may do.
func TestSupportQueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	dev := deviceClient(t, fl.Name, d, key)

	r, err := dev.PostDeviceRequest(ctx, apitype.DeviceRequest{Reason: "the amp hums", ForS: 3600})
	must(t, err)
	if r.Kind != apitype.RequestSupport || r.State != apitype.RequestOpen || r.Device != d.Name || r.Fleet != fl.Name ||
		r.Reason != "the amp hums" || r.ExpiresAt.Sub(r.CreatedAt) != time.Hour {
		t.Fatalf("posted request %+v", r)
	}

	// Engineers of the fleet see it; another fleet's owner does not.
	owner, operator, auditor := userClient(t, "owner"), userClient(t, "operator"), userClient(t, "auditor")
	list, err := auditor.Requests(ctx, apiclient.RequestFilter{Fleet: fl.Name})
	must(t, err)
	if len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("the auditor's queue: %+v", list)
	}
	if list, err := userClient(t, "other").Requests(ctx, apiclient.RequestFilter{}); err != nil || containsRequest(list, r.ID) {
		t.Fatalf("another fleet's owner sees %+v (%v)", list, err)
	}
	if _, err := userClient(t, "other").ClaimRequest(ctx, r.ID); !apiclient.IsCode(err, apitype.CodeNotFound) {
		t.Fatalf("another fleet's owner claims: %v; want not found", err)
	}
	if _, err := auditor.ClaimRequest(ctx, r.ID); !apiclient.IsCode(err, apitype.CodeForbidden) {
		t.Fatalf("an auditor claims: %v; want forbidden", err)
	}

	// One claim; a second engineer is told who has it; claiming one's own
	// claim again is fine.
	got, err := operator.ClaimRequest(ctx, r.ID)
	must(t, err)
	if got.State != apitype.RequestClaimed || got.ClaimedBy != fx.users["operator"].Email {
		t.Fatalf("claimed request %+v", got)
	}
	if _, err := owner.ClaimRequest(ctx, r.ID); !apiclient.IsCode(err, apitype.CodeConflict) {
		t.Fatalf("a second claim: %v; want conflict", err)
	}
	if _, err := operator.ClaimRequest(ctx, r.ID); err != nil {
		t.Fatalf("claiming one's own claim again: %v", err)
	}

	// The device closes it (the owner revoked); it leaves the queue.
	got, err = dev.CloseDeviceRequest(ctx, r.ID, "revoked")
	must(t, err)
	if got.State != apitype.RequestClosed || got.CloseReason != "revoked" || got.ClosedBy != "device" {
		t.Fatalf("closed request %+v", got)
	}
	if list, _ := auditor.Requests(ctx, apiclient.RequestFilter{Fleet: fl.Name}); len(list) != 0 {
		t.Errorf("the queue after the close: %+v", list)
	}
	if list, _ := auditor.Requests(ctx, apiclient.RequestFilter{Fleet: fl.Name, All: true}); len(list) != 1 {
		t.Errorf("all requests after the close: %+v", list)
	}
	if _, err := owner.CloseRequest(ctx, r.ID); err != nil {
		t.Errorf("closing a closed request: %v", err)
	}

	// Another device cannot close this device's requests, nor speak of
	// its sessions.
	other, otherKey := newKeyedDevice(t, fl)
	otherDev := deviceClient(t, fl.Name, other, otherKey)
	r2, err := dev.PostDeviceRequest(ctx, apitype.DeviceRequest{ForS: 60})
	must(t, err)
	if _, err := otherDev.CloseDeviceRequest(ctx, r2.ID, "revoked"); !apiclient.IsCode(err, apitype.CodeNotFound) {
		t.Errorf("another device closes the request: %v; want not found", err)
	}
	ses := fx.newSession(t, d)
	if _, err := otherDev.PostDeviceRequest(ctx, apitype.DeviceRequest{Session: ses.ID, ForS: 60}); !apiclient.IsCode(err, apitype.CodeNotFound) {
		t.Errorf("another device asks about the session: %v; want not found", err)
	}

	// A new window replaces the pending one.
	r3, err := dev.PostDeviceRequest(ctx, apitype.DeviceRequest{Reason: "again", ForS: 60})
	must(t, err)
	if got, _ := owner.Request(ctx, r2.ID); got.State != apitype.RequestClosed || got.CloseReason != "replaced" {
		t.Errorf("the replaced request: %+v", got)
	}
	if _, err := owner.CloseRequest(ctx, r3.ID); err != nil {
		t.Errorf("an engineer closes: %v", err)
	}
	if got, _ := owner.Request(ctx, r3.ID); got.ClosedBy != fx.users["owner"].Email || got.CloseReason != "closed" {
		t.Errorf("closed by an engineer: %+v", got)
	}

	for _, bad := range []apitype.DeviceRequest{
		{ForS: 0}, {ForS: 86401}, {ForS: 60, Reason: string(make([]byte, 501))},
		{Session: ses.ID, ForS: 901}, {Session: ses.ID, ForS: 60, Reason: "mine"},
	} {
		if _, err := dev.PostDeviceRequest(ctx, bad); !apiclient.IsCode(err, apitype.CodeBadRequest) {
			t.Errorf("PostDeviceRequest(%+v): %v; want bad request", bad, err)
		}
	}
	if _, err := dev.CloseDeviceRequest(ctx, r3.ID, "Revoked!"); !apiclient.IsCode(err, apitype.CodeBadRequest) {
		t.Errorf("a close reason that is no token: %v", err)
	}
}

// TestApprovalRequest: a device asks about its own session; the request
// carries the engineer and their reason, a retry answers the same request,
// and engineers find it by session.
func TestApprovalRequest(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	dev := deviceClient(t, fl.Name, d, key)
	ses := fx.newSession(t, d)
	must(t, fx.store.CreateSupportRequest(ctx, &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestSupport,
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})) // a support request stays apart

	r, err := dev.PostDeviceRequest(ctx, apitype.DeviceRequest{Session: ses.ID, ForS: 300})
	must(t, err)
	if r.Kind != apitype.RequestApproval || r.Session != ses.ID || r.RequestedBy != fx.users["operator"].Email ||
		len(r.Sessions) != 1 || r.Sessions[0] != ses.ID {
		t.Fatalf("approval request %+v", r)
	}
	again, err := dev.PostDeviceRequest(ctx, apitype.DeviceRequest{Session: ses.ID, ForS: 300})
	if err != nil || again.ID != r.ID {
		t.Fatalf("a retried approval request: %+v, %v; want %s", again, err, r.ID)
	}
	list, err := userClient(t, "auditor").Requests(ctx, apiclient.RequestFilter{Session: ses.ID})
	must(t, err)
	if len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("requests of session %s: %+v", ses.ID, list)
	}
	// A closed session takes no approval request.
	closed := fx.newSession(t, d)
	_, _, err = fx.store.TransitionSession(ctx, closed.ID, store.OpenSessionStates, store.SessionClosed, "engineer_closed", time.Now())
	must(t, err)
	if _, err := dev.PostDeviceRequest(ctx, apitype.DeviceRequest{Session: closed.ID, ForS: 60}); !apiclient.IsCode(err, apitype.CodeConflict) {
		t.Errorf("approval of a closed session: %v; want conflict", err)
	}
}

// TestExpiredRequest: a request past its end is reported closed, as
// expired, leaves the queue, and cannot be claimed.
func TestExpiredRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	r := &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestSupport, CreatedAt: time.Now().Add(-2 * time.Hour),
		ExpiresAt: time.Now().Add(-time.Hour)}
	must(t, fx.store.CreateSupportRequest(ctx, r))
	got := decodeAs[apitype.SupportRequest](t, do(t, fx.ts, "GET", "/api/v1/requests/"+r.ID, fx.tokens["auditor"], nil), http.StatusOK)
	if got.State != apitype.RequestClosed || got.CloseReason != apitype.RequestExpired || !got.ClosedAt.Equal(r.ExpiresAt) {
		t.Errorf("expired request %+v", got)
	}
	list := decodeAs[[]apitype.SupportRequest](t, do(t, fx.ts, "GET", "/api/v1/requests?fleet="+fl.Name, fx.tokens["auditor"], nil), http.StatusOK)
	if containsRequest(list, r.ID) {
		t.Errorf("an expired request is in the queue")
	}
	do(t, fx.ts, "POST", "/api/v1/requests/"+r.ID+"/claim", fx.tokens["operator"], nil).wantError(t, http.StatusConflict, apitype.CodeConflict)
}

func containsRequest(rs []apitype.SupportRequest, id string) bool {
	for _, r := range rs {
		if r.ID == id {
			return true
		}
	}
	return false
}

// TestSupportQueueAudited: the owner's request, an engineer's claim and
// the device's close are in the audit log, by their actors; a claim that
// changes nothing is not.
func TestSupportQueueAudited(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	dev := deviceClient(t, fl.Name, d, key)
	mark := auditMark(t)
	r, err := dev.PostDeviceRequest(ctx, apitype.DeviceRequest{Reason: "the amp hums", ForS: 600})
	must(t, err)
	operator := userClient(t, "operator")
	_, err = operator.ClaimRequest(ctx, r.ID)
	must(t, err)
	_, err = operator.ClaimRequest(ctx, r.ID) // again: no change
	must(t, err)
	_, err = dev.CloseDeviceRequest(ctx, r.ID, "revoked")
	must(t, err)
	evs := auditSince(t, fx.tokens["auditor"], mark, "fleet="+fl.Name)
	if got := eventKinds(evs); !slices.Equal(got, []string{"support_requested", "support_request_claimed", "support_request_closed"}) {
		t.Fatalf("events %v", got)
	}
	if evs[0].Actor.Kind != "device" || evs[0].Detail["reason"] != "the amp hums" || evs[0].Device != d.Name ||
		evs[1].Actor.Name != fx.users["operator"].Email || evs[2].Detail["reason"] != "revoked" {
		t.Errorf("events %+v", evs)
	}
}
