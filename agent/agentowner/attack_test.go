package agentowner

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentconsent"
)

// modePageAttacker makes the test binary a local user who is not the
// owner and tries the owner's page and socket: os.Args[2] is the page's
// base URL, [3] the socket, [4] a login link the owner used already. It
// prints what each attempt got, as JSON.
const modePageAttacker = "agent-test-page-attacker"

func TestMain(m *testing.M) {
	if len(os.Args) > 4 && os.Args[1] == modePageAttacker {
		pageAttacker(os.Args[2], os.Args[3], os.Args[4])
		os.Exit(0)
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// attempt is what one try of the attacker got.
type attempt struct {
	What   string
	Status int
	Body   string
	Err    string
}

// attackReport is the attacker's account.
type attackReport struct {
	UID      int
	Attempts []attempt
}

func pageAttacker(base, socket, usedLink string) {
	rep := attackReport{UID: os.Getuid()}
	do := func(c *http.Client, what, method, url, body string, header map[string]string) {
		a := attempt{What: what}
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err == nil {
			for k, v := range header {
				req.Header.Set(k, v)
			}
			var resp *http.Response
			if resp, err = c.Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				a.Status, a.Body = resp.StatusCode, string(b)
			}
		}
		if err != nil {
			a.Err = err.Error()
		}
		rep.Attempts = append(rep.Attempts, a)
	}
	web := &http.Client{Timeout: 10 * time.Second}
	host := strings.TrimPrefix(base, "http://")
	do(web, "the page", "GET", base+"/", "", nil)
	// Whatever token the page gave away is used; else a guess.
	token := "guess"
	if m := regexp.MustCompile(`name="porthole-token" content="([^"]+)"`).FindStringSubmatch(rep.Attempts[0].Body); m != nil {
		token = m[1]
	}
	js := map[string]string{"Content-Type": "application/json", "Origin": base, pageTokenHeader: token}
	do(web, "the status", "GET", base+"/api/v1/status", "", nil)
	do(web, "the status with the token", "GET", base+"/api/v1/status", "", map[string]string{pageTokenHeader: token})
	do(web, "the history", "GET", base+"/api/v1/history", "", map[string]string{pageTokenHeader: token})
	do(web, "a support window", "POST", base+"/api/v1/request", `{"for_s":86400}`, js)
	do(web, "a revoke", "POST", base+"/api/v1/revoke", `{}`, js)
	do(web, "the owner's used link", "GET", usedLink, "", nil)
	do(web, "an empty link", "GET", base+"/login?k=", "", nil)
	do(web, "a cookie of its own", "GET", base+"/", "", map[string]string{"Cookie": pageCookiePrefix + host[strings.LastIndex(host, ":")+1:] + "=guess"})
	sock := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	do(sock, "the socket's status", "GET", "http://agent/v1/status", "", nil)
	json.NewEncoder(os.Stdout).Encode(rep)
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
)

// everyoneBinary is a copy of the test binary that every user may run (go
// test's own lies in a directory only root can enter).
func everyoneBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			return
		}
		dir, err := os.MkdirTemp("", "agent-bin-")
		if err != nil {
			return
		}
		binDir = dir
		data, err := os.ReadFile(self)
		if err != nil || os.Chmod(dir, 0o755) != nil {
			return
		}
		p := filepath.Join(dir, "agent.test")
		if os.WriteFile(p, data, 0o755) != nil {
			return
		}
		binPath = p
	})
	if binPath == "" {
		t.Fatal("cannot copy the test binary for another user")
	}
	return binPath
}

// TestLocalPageRefusesOtherUsers: another local user (nobody, as an
// engineer's shell run_as a plain user would be) tries the owner's page
// and socket while a support window is open and the owner is signed in to
// the page. Every attempt is refused; none learns the code, the page's
// token or a login link, and none opens or ends anything.
func TestLocalPageRefusesOtherUsers(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the attacker as nobody")
	}
	a := newLocalAgent(t, agentconsent.Manual)
	// Let everyone reach the socket's directory: the socket's own mode
	// must keep them out.
	if err := os.Chmod(filepath.Dir(a.socket), 0o755); err != nil {
		t.Fatal(err)
	}
	base := servePage(t, a)
	ans, err := a.client.Request(t.Context(), "it hums", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The owner is signed in with one link and holds another, unused.
	used := a.local.PageLink()
	if status, _ := get(t, pageBrowser(t), used); status != 200 {
		t.Fatalf("the owner's link: %d", status)
	}
	unused := a.local.PageLink()

	cmd := exec.Command(everyoneBinary(t), modePageAttacker, base, a.socket, used)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the attacker: %v", err)
	}
	var rep attackReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("the attacker's report %q: %v", out, err)
	}
	if rep.UID != 65534 || len(rep.Attempts) != 10 {
		t.Fatalf("the attacker ran as uid %d and made %d attempts; want nobody, 10", rep.UID, len(rep.Attempts))
	}
	secrets := map[string]string{
		"the support code": ans.Window.Code,
		"the page's token": a.local.token,
		"a login link":     strings.TrimPrefix(unused, base+"/login?k="),
	}
	full := map[string]string{}
	for _, at := range rep.Attempts {
		full[at.What] = at.Body
	}
	for _, at := range rep.Attempts {
		if len(at.Body) > 300 {
			at.Body = at.Body[:300] + "…"
		}
		switch {
		case at.What == "the socket's status":
			if !strings.Contains(at.Err, "permission denied") {
				t.Errorf("%s: %d %q %q; want permission denied", at.What, at.Status, at.Body, at.Err)
			}
		case at.Status != http.StatusForbidden:
			t.Errorf("%s: %d %q %q; want 403", at.What, at.Status, at.Body, at.Err)
		}
		for name, secret := range secrets {
			if strings.Contains(full[at.What], secret) || strings.Contains(at.Err, secret) {
				t.Errorf("%s: the attacker learnt %s", at.What, name)
			}
		}
	}
	st := a.consent.Status()
	if st.Window == nil || st.Window.Code != ans.Window.Code || !st.Window.Ends.Equal(ans.Window.Ends) {
		t.Errorf("the window after the attack: %+v; want the owner's, untouched", st.Window)
	}
}
