package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

func TestLabels(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	path := "/api/v1/devices/" + d.ID + "/labels"
	set := func(labels map[string]string) response {
		return do(t, fx.ts, "PUT", path, fx.tokens["operator"], apitype.SetLabelsRequest{Labels: labels})
	}
	stored := func() map[string]string {
		got, err := fx.store.GetDevice(context.Background(), d.ID)
		must(t, err)
		return got.Labels
	}
	want := map[string]string{"site": "lab 3", "k8s.io/zone": "eu-west_1", "owner": "Zoë"}
	got := decodeAs[apitype.Device](t, set(want), http.StatusOK)
	if !maps.Equal(got.Labels, want) || !maps.Equal(stored(), want) {
		t.Fatalf("labels = %v, stored %v; want %v", got.Labels, stored(), want)
	}
	tooMany := map[string]string{}
	for i := range maxLabels + 1 {
		tooMany[fmt.Sprintf("k%d", i)] = "v"
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		text   string
	}{
		{"upper-case key", map[string]string{"Site": "x"}, `label key "Site" is not allowed`},
		{"empty key", map[string]string{"": "x"}, `label key "" is not allowed`},
		{"long key", map[string]string{strings.Repeat("k", 64): "x"}, "is not allowed"},
		{"long value", map[string]string{"k": strings.Repeat("v", 256)}, "at most 255 are allowed"},
		{"control character", map[string]string{"k": "a\nb"}, "control or invalid characters"},
		{"bidi override", map[string]string{"k": "abc\u202edef"}, "control or invalid characters"},
		{"too many", tooMany, "at most 64 labels"},
		{"null", nil, "labels is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := set(tt.labels).wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)
			if !strings.Contains(e.Message, tt.text) {
				t.Errorf("message = %q; want it to contain %q", e.Message, tt.text)
			}
			if !maps.Equal(stored(), want) {
				t.Errorf("refused labels changed the device: %v", stored())
			}
		})
	}
	// Labels are replaced, not merged; {} removes them all.
	decodeAs[apitype.Device](t, set(map[string]string{}), http.StatusOK)
	if len(stored()) != 0 {
		t.Errorf("labels after {} = %v; want none", stored())
	}
}

func TestDeleteDevice(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	path := "/api/v1/devices/" + d.ID
	e := do(t, fx.ts, "DELETE", path, fx.tokens["operator"], nil).wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	if want := "only a fleet owner can delete devices; you are an operator of " + fl.Name; e.Message != want {
		t.Errorf("message = %q; want %q", e.Message, want)
	}
	if r := do(t, fx.ts, "DELETE", path, fx.tokens["owner"], nil); r.status != http.StatusNoContent {
		t.Fatalf("owner deleting: status %d (%s)", r.status, r.body)
	}
	do(t, fx.ts, "GET", path, fx.tokens["owner"], nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	do(t, fx.ts, "DELETE", path, fx.tokens["owner"], nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
}

// TestDeleteDeviceAnnounced: deleting a device announces it to every
// server node through the store (store.Changes), so that each ends the
// connections the device may still have there; a refused delete announces
// nothing.
func TestDeleteDeviceAnnounced(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	told := make(chan store.Change, 10)
	fx.store.Watch(t.Context(), func(c store.Change) {
		if c.Fleet == fl.Name && c.Kind == store.DeviceDeleted {
			told <- c
		}
	})
	path := "/api/v1/devices/" + d.ID
	do(t, fx.ts, "DELETE", path, fx.tokens["operator"], nil).wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	if r := do(t, fx.ts, "DELETE", path, fx.tokens["owner"], nil); r.status != http.StatusNoContent {
		t.Fatalf("owner deleting: status %d (%s)", r.status, r.body)
	}
	close(told) // the handler is done: its answer came, after the change was announced
	var got []string
	for c := range told {
		got = append(got, c.Fleet+"/"+c.Device)
	}
	if want := []string{fl.Name + "/" + d.Name}; !slices.Equal(got, want) {
		t.Errorf("announced deletions = %v; want %v", got, want)
	}
}

// TestCrossFleet: another fleet's devices and fleet answer exactly as
// missing ones do, so their existence does not leak.
func TestCrossFleet(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	other := fx.tokens["other"]
	for _, pair := range [][2]string{
		{"/api/v1/devices/" + d.ID, "/api/v1/devices/no-such-device"},
		{"/api/v1/fleets/" + fl.Name, "/api/v1/fleets/no-such-fleet"},
		{"/api/v1/devices?fleet=" + fl.Name, "/api/v1/devices?fleet=no-such-fleet"},
	} {
		hidden := do(t, fx.ts, "GET", pair[0], other, nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
		missing := do(t, fx.ts, "GET", pair[1], other, nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
		norm := func(s string) string {
			return strings.NewReplacer(d.ID, "X", "no-such-device", "X", fl.Name, "X", "no-such-fleet", "X").Replace(s)
		}
		if norm(hidden.Message) != norm(missing.Message) {
			t.Errorf("hidden %q and missing %q answer differently", hidden.Message, missing.Message)
		}
	}
	// Lists show only the caller's fleets and their devices.
	ds := decodeAs[[]apitype.Device](t, do(t, fx.ts, "GET", "/api/v1/devices", other, nil), http.StatusOK)
	for _, got := range ds {
		if got.Fleet != fx.other.Name {
			t.Errorf("the other fleet's owner sees device %s of fleet %s", got.Name, got.Fleet)
		}
	}
	fleets := decodeAs[[]apitype.Fleet](t, do(t, fx.ts, "GET", "/api/v1/fleets", other, nil), http.StatusOK)
	if len(fleets) != 1 || fleets[0].Name != fx.other.Name || fleets[0].Role != "owner" {
		t.Errorf("fleets = %+v; want only %s as owner", fleets, fx.other.Name)
	}
	// A user with no role at all sees nothing.
	loner, _, err := newToken(fx.store, newUser(t, false), time.Now().Add(time.Hour))
	must(t, err)
	if ds := decodeAs[[]apitype.Device](t, do(t, fx.ts, "GET", "/api/v1/devices", loner, nil), http.StatusOK); len(ds) != 0 {
		t.Errorf("a user without roles sees devices %+v", ds)
	}
}

func TestListDevices(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d1, d2 := fx.newDevice(t, fl), fx.newDevice(t, fl)
	ds := decodeAs[[]apitype.Device](t, do(t, fx.ts, "GET", "/api/v1/devices?fleet="+fl.Name, fx.tokens["auditor"], nil), http.StatusOK)
	if len(ds) != 2 {
		t.Fatalf("devices = %+v; want %s and %s", ds, d1.Name, d2.Name)
	}
	ds = decodeAs[[]apitype.Device](t, do(t, fx.ts, "GET", "/api/v1/devices?name="+d2.Name, fx.tokens["admin"], nil), http.StatusOK)
	if len(ds) != 1 || ds[0].ID != d2.ID || ds[0].Fleet != fl.Name {
		t.Errorf("devices named %s = %+v", d2.Name, ds)
	}
	e := do(t, fx.ts, "GET", "/api/v1/devices?fleet="+fl.Name+"&nmae=x", fx.tokens["admin"], nil).wantError(t, 400, apitype.CodeBadRequest)
	if !strings.Contains(e.Message, `unknown query parameter "nmae"`) {
		t.Errorf("message = %q", e.Message)
	}
	do(t, fx.ts, "GET", "/api/v1/devices?name=Bad_Name", fx.tokens["admin"], nil).wantError(t, 400, apitype.CodeBadRequest)
}
