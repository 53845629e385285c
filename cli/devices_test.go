package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
)

var testDevices = []apitype.Device{
	{ID: "d3", Fleet: "lab", Name: "cam", EnrolledAt: time.Now().Add(-72 * time.Hour)},
	{ID: "d2", Fleet: "acme", Name: "dev2", Online: true, LastSeen: time.Now(), Labels: map[string]string{"site": "berlin", "floor": "2"},
		Agent: &apitype.DeviceAgent{Version: "1.4.0", Capabilities: []string{"relay2", "policy"}, Consent: "approve", AllowPorts: []int{22}}},
	{ID: "d1", Fleet: "acme", Name: "dev1", LastSeen: time.Now().Add(-3*time.Hour - time.Minute)},
}

func TestDevicesTable(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/devices": answer(testDevices)})
	r := mustRun(t, f.loggedIn(t), "", "devices")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("devices printed %d lines; want a header and 3 rows:\n%s", len(lines), r.stdout)
	}
	for i, want := range [][]string{
		{"NAME", "FLEET", "STATUS", "LAST SEEN", "AGENT", "CONSENT", "LABELS", "ENROLLED"},
		{"dev1", "acme", "offline 3 h", " - "},
		{"dev2", "acme", "online", "1.4.0", "approve", "floor=2,site=berlin"},
		{"cam", "lab", "never"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d = %q; want it to contain %q", i, lines[i], w)
			}
		}
	}
	if r.stderr != "" {
		t.Errorf("devices wrote on stderr: %q", r.stderr)
	}
}

func TestDevicesJSON(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/devices": answer(testDevices)})
	r := mustRun(t, f.loggedIn(t), "", "devices", "--fleet", "acme", "--json")
	var got []apitype.Device
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("devices --json: %v\n%s", err, r.stdout)
	}
	if len(got) != 3 || got[0].Name != "dev1" || got[1].Name != "dev2" || got[2].Name != "cam" {
		t.Errorf("devices --json = %+v; want sorted by fleet and name", got)
	}
	if seen := f.seen(); len(seen) != 1 || seen[0] != "GET /api/v1/devices?fleet=acme" {
		t.Errorf("requests %v; want the fleet filter", seen)
	}
}

// TestListsPrintEmptyJSONArray: an empty list is [] on stdout with --json,
// and nothing on stdout (a note on stderr) without.
func TestListsPrintEmptyJSONArray(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/devices":                       answer([]apitype.Device{}),
		"GET /api/v1/fleets":                        func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("null")) },
		"GET /api/v1/users":                         answer([]apitype.User{}),
		"GET /api/v1/tokens":                        answer([]apitype.TokenInfo{}),
		"GET /api/v1/fleets/acme/enrollment-tokens": answer([]apitype.EnrollmentToken{}),
	})
	env := f.loggedIn(t)
	for _, args := range [][]string{{"devices"}, {"fleets"}, {"users"}, {"tokens"}, {"enroll-token", "list", "--fleet", "acme"}} {
		t.Run(args[0], func(t *testing.T) {
			r := mustRun(t, env, "", append(args, "--json")...)
			if strings.TrimSpace(r.stdout) != "[]" {
				t.Errorf("%v --json printed %q; want []", args, r.stdout)
			}
			r = mustRun(t, env, "", args...)
			if r.stdout != "" || !strings.HasPrefix(r.stderr, "no ") {
				t.Errorf("%v: stdout %q, stderr %q; want nothing and a note", args, r.stdout, r.stderr)
			}
		})
	}
}

// deviceAPI is a fake whose device list ignores the name filter, as a buggy
// or hostile server might, and records deletes and label changes.
func deviceAPI(t *testing.T, deleted, labeled chan string) *fakeAPI {
	return newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/devices": answer(testDevices),
		"DELETE /api/v1/devices/{id}": func(w http.ResponseWriter, r *http.Request) {
			deleted <- r.PathValue("id")
			w.WriteHeader(http.StatusNoContent)
		},
		"PUT /api/v1/devices/{id}/labels": func(w http.ResponseWriter, r *http.Request) {
			var req apitype.SetLabelsRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				t.Error(err)
			}
			labeled <- r.PathValue("id") + " " + formatLabels(req.Labels)
			w.WriteHeader(http.StatusNoContent)
		},
	})
}

// TestDeviceRmByName: rm resolves the name itself, so a server that
// ignores ?name= cannot make it remove another device.
func TestDeviceRmByName(t *testing.T) {
	deleted := make(chan string, 10)
	f := deviceAPI(t, deleted, nil)
	env := f.loggedIn(t)
	r := mustRun(t, env, "", "devices", "rm", "dev1", "--fleet", "acme")
	if got := <-deleted; got != "d1" {
		t.Errorf("rm dev1 deleted %s; want d1", got)
	}
	if !strings.Contains(r.stderr, "removed device dev1 from fleet acme") {
		t.Errorf("rm says %q", r.stderr)
	}
	if seen := f.seen(); len(seen) < 1 || seen[0] != "GET /api/v1/devices?fleet=acme&name=dev1" {
		t.Errorf("rm looked up %v; want the name and fleet filter", seen)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, "no device nosuch in your fleets"},
		{[]string{"cam", "--fleet", "acme"}, "no device cam in fleet acme"},
	} {
		r := runCLI(t, env, "", append([]string{"devices", "rm"}, tt.args...)...)
		if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
			t.Errorf("rm %v: %v; want %q", tt.args, r.err, tt.want)
		}
	}
	if len(deleted) != 0 {
		t.Errorf("rm of a device that is not there deleted %s", <-deleted)
	}
}

func TestDeviceRmAmbiguous(t *testing.T) {
	twins := []apitype.Device{{ID: "a", Fleet: "acme", Name: "gw"}, {ID: "b", Fleet: "lab", Name: "gw"}}
	f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/devices": answer(twins)})
	r := runCLI(t, f.loggedIn(t), "", "devices", "rm", "gw")
	if r.err == nil || !strings.Contains(r.err.Error(), "acme, lab: say which with --fleet") {
		t.Errorf("rm of a name in two fleets: %v; want to be asked which", r.err)
	}
}

func TestDeviceLabel(t *testing.T) {
	labeled := make(chan string, 10)
	f := deviceAPI(t, nil, labeled)
	r := mustRun(t, f.loggedIn(t), "", "devices", "label", "dev2", "floor-", "rack=7", "--fleet", "acme")
	if got, want := <-labeled, "d2 rack=7,site=berlin"; got != want {
		t.Errorf("label sent %q; want %q", got, want)
	}
	if !strings.Contains(r.stderr, "labels of dev2 in fleet acme: rack=7,site=berlin") {
		t.Errorf("label says %q", r.stderr)
	}
	f.seen()
	r = runCLI(t, f.loggedIn(t), "", "devices", "label", "dev2", "floor")
	if r.err == nil || !strings.Contains(r.err.Error(), "neither key=value") || len(f.seen()) != 0 {
		t.Errorf("label with a bad argument: %v; want refused before any request", r.err)
	}
}
