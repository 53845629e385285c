package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// TestDeviceInfo: a device's agent reports what it is and what its owner
// allows; engineers read it on the device; the consent mode's first report
// and its changes are in the audit log, a report that changes nothing is
// not.
func TestDeviceInfo(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	c, err := apiclient.New(fx.ts.URL, apiclient.Options{Fingerprint: fx.keys.TLSFingerprint(),
		Device: &apiclient.DeviceCredentials{Fleet: fl.Name, Device: d.Name, Key: key}})
	must(t, err)

	var before apitype.Device
	if r := do(t, fx.ts, "GET", "/api/v1/devices/"+d.ID, fx.tokens["admin"], nil); r.status != http.StatusOK {
		t.Fatalf("GET device: %d %s", r.status, r.body)
	} else {
		must(t, json.Unmarshal(r.body, &before))
	}
	if before.Agent != nil || strings.Contains(string(do(t, fx.ts, "GET", "/api/v1/devices/"+d.ID, fx.tokens["admin"], nil).body), `"agent"`) {
		t.Fatalf("a device that never reported shows an agent: %+v", before.Agent)
	}

	report := apitype.DeviceInfo{Version: "1.4.0", Capabilities: []string{"relay2", "policy"}, Consent: "approve", AllowPorts: []int{8080, 22}}
	got, err := c.ReportDeviceInfo(ctx, report)
	must(t, err)
	want := &apitype.DeviceAgent{Version: "1.4.0", Capabilities: []string{"relay2", "policy"}, Consent: "approve", AllowPorts: []int{22, 8080}}
	check := func(what string, a *apitype.DeviceAgent) {
		t.Helper()
		if a == nil || a.Version != want.Version || !slices.Equal(a.Capabilities, want.Capabilities) || a.Consent != want.Consent ||
			!slices.Equal(a.AllowPorts, want.AllowPorts) || a.ReportedAt.IsZero() {
			t.Fatalf("%s: agent %+v; want %+v", what, a, want)
		}
	}
	check("the answer", got.Agent)
	var seen apitype.Device
	r := do(t, fx.ts, "GET", "/api/v1/devices/"+d.ID, fx.tokens["admin"], nil)
	must(t, json.Unmarshal(r.body, &seen))
	check("GET /api/v1/devices/{id}", seen.Agent)
	var listed []apitype.Device
	r = do(t, fx.ts, "GET", "/api/v1/devices?fleet="+fl.Name, fx.tokens["admin"], nil)
	must(t, json.Unmarshal(r.body, &listed))
	check("GET /api/v1/devices", listed[0].Agent)

	// Again (a restart): nothing new in the log. Then the owner changes
	// the mode: logged with both.
	_, err = c.ReportDeviceInfo(ctx, report)
	must(t, err)
	report.Consent, want.Consent = "manual", "manual"
	got, err = c.ReportDeviceInfo(ctx, report)
	must(t, err)
	check("after a change", got.Agent)
	evs, err := fx.store.ListAudit(ctx, store.AuditFilter{FleetIDs: []string{fl.ID}, Device: d.Name})
	must(t, err)
	who := d.Name + "." + fl.Name + " " + d.ID
	var changes []string
	for _, e := range evs {
		if e.Kind == audit.ConsentReported {
			changes = append(changes, e.Detail["old"]+"→"+e.Detail["new"]+" by "+e.Actor.Name+" "+e.DeviceID)
		}
	}
	if wantChanges := []string{"none reported→approve by " + who, "approve→manual by " + who}; !slices.Equal(changes, wantChanges) {
		t.Errorf("consent events %q; want %q", changes, wantChanges)
	}
}

// TestDeviceInfoRefused tries, as an attacker would, to report for
// another device, or to store what breaks the report's bounds: each is
// refused in words and nothing of it is stored.
func TestDeviceInfoRefused(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	victim, _ := newKeyedDevice(t, fl)
	intruder, key := newKeyedDevice(t, fl)
	good := `{"version":"1.4.0","capabilities":["relay2","policy"],"consent":"auto","allow_ports":[22]}`

	// Another device's name with the intruder's key: refused by auth.
	impostor := *victim
	if r := doDevice(t, fx.ts.URL, "PUT", "/api/v1/device/info", &impostor, key, good); r.status != http.StatusUnauthorized {
		t.Errorf("a report for another device: %d %s; want 401", r.status, r.body)
	}

	many := func(n int, f func(i int) string) string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct{ name, body, words string }{
		{"not JSON", `{"version":`, "not valid JSON"},
		{"an unknown field", `{"version":"1","capabilities":[],"consent":"auto","allow_ports":[],"authority":true}`, "unknown field"},
		{"no version", `{"version":"","capabilities":[],"consent":"auto","allow_ports":[]}`, "version must be"},
		{"a long version", `{"version":"` + strings.Repeat("9", 65) + `","capabilities":[],"consent":"auto","allow_ports":[]}`, "version must be"},
		{"a version with a newline", `{"version":"1\nforged log line","capabilities":[],"consent":"auto","allow_ports":[]}`, "version must be"},
		{"no capabilities", `{"version":"1","consent":"auto","allow_ports":[]}`, "capabilities is missing"},
		{"too many capabilities", `{"version":"1","capabilities":[` + many(33, func(i int) string { return `"c` + strings.Repeat("x", i) + `"` }) + `],"consent":"auto","allow_ports":[]}`, "at most 32"},
		{"a capability that is no name", `{"version":"1","capabilities":["<script>"],"consent":"auto","allow_ports":[]}`, "is not a name"},
		{"a capability twice", `{"version":"1","capabilities":["policy","policy"],"consent":"auto","allow_ports":[]}`, "listed twice"},
		{"an unknown consent", `{"version":"1","capabilities":[],"consent":"anyone","allow_ports":[]}`, "consent must be"},
		{"no consent", `{"version":"1","capabilities":[],"allow_ports":[]}`, "consent must be"},
		{"no allow_ports", `{"version":"1","capabilities":[],"consent":"auto"}`, "allow_ports is missing"},
		{"a port out of range", `{"version":"1","capabilities":[],"consent":"auto","allow_ports":[70000]}`, "is not a port"},
		{"port 0", `{"version":"1","capabilities":[],"consent":"auto","allow_ports":[0]}`, "is not a port"},
		{"a port twice", `{"version":"1","capabilities":[],"consent":"auto","allow_ports":[22,22]}`, "listed twice"},
		{"too many ports", `{"version":"1","capabilities":[],"consent":"auto","allow_ports":[` + many(1025, func(i int) string { return strconv.Itoa(i + 1) }) + `]}`, "at most 1024"},
	} {
		r := doDevice(t, fx.ts.URL, "PUT", "/api/v1/device/info", intruder, key, tt.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), tt.words) {
			t.Errorf("%s: %d %s; want 400 saying %q", tt.name, r.status, r.body, tt.words)
		}
	}
	// A body over the server's cap: 413, in words.
	if r := doDevice(t, fx.ts.URL, "PUT", "/api/v1/device/info", intruder, key,
		`{"version":"1","capabilities":[],"consent":"auto","allow_ports":[],"x":"`+strings.Repeat("a", 2<<20)+`"}`); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a huge body: %d %.200s; want 413", r.status, r.body)
	}
	for _, d := range []*store.Device{victim, intruder} {
		got, err := fx.store.GetDevice(t.Context(), d.ID)
		must(t, err)
		if got.Agent.Reported() {
			t.Errorf("%s: a refused report was stored: %+v", d.Name, got.Agent)
		}
	}
	if r := doDevice(t, fx.ts.URL, "PUT", "/api/v1/device/info", intruder, key, good); r.status != http.StatusOK {
		t.Fatalf("the intruder's own good report: %d %s", r.status, r.body)
	}
	got, err := fx.store.GetDevice(t.Context(), victim.ID)
	must(t, err)
	if got.Agent.Reported() {
		t.Errorf("the intruder's report reached the victim: %+v", got.Agent)
	}
}
