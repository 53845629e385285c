package e2e

import (
	"cmp"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testwait"
)

// TestUploadEndToEnd runs the real binaries: an engineer's command prints
// a marker on the device, the agent is killed (SIGKILL) in the middle of
// the session, right after the recorder wrote the marker and before the
// upload could send it; started again, the agent sends the interrupted
// recording and completes it. `porthole replay` plays the marker from the
// server's copy, `porthole sessions` shows its size, and the owner link
// that `porthole-agent status` prints reads the device's audit log and the
// recording, and nothing else.
func TestUploadEndToEnd(t *testing.T) {
	t.Parallel()
	srv := newPresenceServer(t, sessionConfig(t, "15m"))
	state := srv.enroll(t, "dev1")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	config := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(config, []byte("consent: auto\nsocket: "+sock+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := srv.runAgent(t, state, config)
	srv.waitPresence(t, "dev1", true, "after the agent started")
	eng := newEngineer(t, srv)

	resp := eng.open(t, "dev1")
	ses := resp.Session.ID
	client, err := eng.dial(t, resp)
	if err != nil {
		t.Fatalf("reaching dev1: %v\nagent log:\n%s", err, agent.Stderr())
	}
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	const marker = "e2e-recorded-before-the-kill"
	if err := s.Start("echo " + marker + "; sleep 60"); err != nil {
		t.Fatal(err)
	}
	cast := filepath.Join(state, "sessions", ses, "0001-exec.cast")
	testwait.ForEvery(t, 10*time.Second, 100*time.Millisecond, "the marker in the device's recording", func() bool {
		b, _ := os.ReadFile(cast)
		return strings.Contains(string(b), marker)
	})
	kill(t, agent)

	srv.runAgent(t, state, config)
	testwait.ForEvery(t, 20*time.Second, 100*time.Millisecond, "the recording complete on the server after the restart", func() bool {
		r, err := eng.api.Recording(t.Context(), ses)
		if err != nil {
			t.Fatalf("reading the recording: %v", err)
		}
		return r.Complete
	})

	r := MustRun(t, srv.env, "", bins.CLI, "replay", ses, "--exec", "--speed", "100")
	if !strings.Contains(r.Stdout, marker) {
		t.Fatalf("porthole replay --exec: stdout %q, stderr %q; want the marker", r.Stdout, r.Stderr)
	}
	if r := MustRun(t, srv.env, "", bins.CLI, "sessions"); !regexp.MustCompile(`(?m)^` + ses + ` .* \d+(\.\d)? (B|KiB)$`).MatchString(r.Stdout) {
		t.Errorf("porthole sessions does not show the recording's size:\n%s", r.Stdout)
	}

	// The owner's link.
	var link []string
	testwait.ForEvery(t, 20*time.Second, 100*time.Millisecond, "the owner link in porthole-agent status", func() bool {
		r := Run(t, srv.env, "", bins.Agent, "status", "--socket", sock, "--state", state)
		link = regexp.MustCompile(`(https://\S+)/owner/#token=(pho_\S+)`).FindStringSubmatch(r.Stdout)
		return link != nil
	})
	base, token := link[1], link[2]
	// The test trusts the server's self-signed certificate as the owner
	// would after checking its fingerprint.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	get := func(method, path, authz string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", authz)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	owner := "Owner " + token
	if code, body := get("GET", "/api/v1/owner/audit?limit=1000", owner); code != 200 ||
		!strings.Contains(body, `"recording_uploaded"`) || !strings.Contains(body, `"owner_link_created"`) || !strings.Contains(body, ses) {
		t.Errorf("the owner's audit log: %d %s", code, body)
	}
	if code, body := get("GET", "/api/v1/owner/sessions/"+ses+"/recording/files/0001-exec.cast", owner); code != 200 || !strings.Contains(body, marker) {
		t.Errorf("the owner's copy of the recording: %d %s", code, body)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/devices"}, {"GET", "/api/v1/sessions/" + ses + "/recording"}, {"DELETE", "/api/v1/sessions/" + ses},
		{"POST", "/api/v1/fleets"}, {"GET", "/api/v1/audit"}, {"POST", "/api/v1/device/owner-link"},
	} {
		if code, body := get(c.method, c.path, owner); code != 401 && code != 403 {
			t.Errorf("%s %s with the owner token: %d %s; want 401 or 403", c.method, c.path, code, body)
		}
	}
	if code, _ := get("GET", "/owner/", ""); code != 200 {
		t.Errorf("the owner's page: %d", code)
	}

	t.Run("page", func(t *testing.T) {
		node, chromium, nodePath := pageTools(t)
		_, here, _, _ := runtime.Caller(0)
		cmd := exec.Command(node, filepath.Join(filepath.Dir(here), "owner_page.cjs"))
		shots := cmp.Or(os.Getenv("PORTHOLE_SHOTS"), t.TempDir()) // a screenshot, for people to look at
		cmd.Env = append(os.Environ(), "NODE_PATH="+nodePath, "CHROMIUM="+chromium, "SHOTS="+shots,
			"OWNER_URL="+base+"/owner/#token="+token, "MARKER="+marker)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "DONE") {
			t.Fatalf("the owner's page in Chromium: %v\n%s", err, out)
		}
	})
}
