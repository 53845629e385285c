package agentconsent

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testwait"
)

func TestSupportCodes(t *testing.T) {
	seen := map[string]bool{}
	shape := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)
	symbols := map[byte]int{}
	for range 2000 {
		code := newSupportCode()
		if seen[code] {
			t.Fatalf("code %s came twice in 2000", code)
		}
		seen[code] = true
		if f := formatCode(code); !shape.MatchString(f) {
			t.Fatalf("formatted code %q is not like K4M2-9QXD-TT7P", f)
		}
		for i := range len(code) {
			symbols[code[i]]++
		}
	}
	if CodeBits < 60 {
		t.Errorf("codes carry %d bits; want at least 60", CodeBits)
	}
	// 24000 symbols over 32: every one shows up, about 750 times each.
	if len(symbols) != 32 {
		t.Errorf("codes use %d symbols; want all 32", len(symbols))
	}
	for s, n := range symbols {
		if n < 500 || n > 1000 {
			t.Errorf("symbol %c came %d times in 24000; want about 750", s, n)
		}
	}
}

func TestCodeMatches(t *testing.T) {
	code := "K4M29QXDTT70" // canonical
	for _, tt := range []struct {
		answer string
		want   bool
	}{
		{"K4M2-9QXD-TT70", true},
		{"k4m2-9qxd-tt70", true},
		{"k4m2 9qxd tt70", true},
		{" K4M29QXDTT7O ", true}, // O read as 0
		{"K4M2-9QXD-TT71", false},
		{"K4M2-9QXD-TT7", false},
		{"K4M2-9QXD-TT700", false},
		{"", false},
		{"K4M2-9QXD-TT70\x00", false},
	} {
		if got := codeMatches(tt.answer, code); got != tt.want {
			t.Errorf("codeMatches(%q) = %v; want %v", tt.answer, got, tt.want)
		}
	}
	if !codeMatches("I1L1", "1111") {
		t.Error("I and L are not read as 1")
	}
}

// fakeServer is the server's support queue as the device sees it: the edge
// of the agent's unit tests (the e2e tests use the real one).
type fakeServer struct {
	mu     sync.Mutex
	posted []apitype.DeviceRequest
	closed map[string]string // request id -> reason
	fail   error
	next   int
}

func (f *fakeServer) PostDeviceRequest(_ context.Context, req apitype.DeviceRequest) (*apitype.SupportRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.posted = append(f.posted, req)
	f.next++
	r := &apitype.SupportRequest{ID: fmt.Sprintf("req_%d", f.next), Reason: req.Reason, Session: req.Session}
	if req.Session != "" {
		r.Kind, r.RequestedBy, r.Reason = apitype.RequestApproval, "ann@example.com", "ticket 42"
	}
	return r, nil
}

func (f *fakeServer) CloseDeviceRequest(_ context.Context, id, reason string) (*apitype.SupportRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed == nil {
		f.closed = map[string]string{}
	}
	f.closed[id] = reason
	return &apitype.SupportRequest{ID: id, State: apitype.RequestClosed, CloseReason: reason}, nil
}

func (f *fakeServer) closedReason(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed[id]
}

func newTestConsent(t *testing.T, mode Mode, edit func(*Options)) (*Consent, *fakeServer) {
	t.Helper()
	srv := &fakeServer{}
	opts := Options{Config: Config{Mode: mode}, Fleet: "lab", Device: "dev1", Server: srv, Log: agenttest.OpenLog(t, t.TempDir())}
	if edit != nil {
		edit(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, srv
}

// TestManualConsent: no window, no session; a window admits sessions whose
// engineers must give its code; five wrong codes close it, end its
// sessions and tell the server; the next window has another code.
func TestManualConsent(t *testing.T) {
	t.Parallel()
	c, srv := newTestConsent(t, Manual, nil)
	var st agenttest.States
	if g, reason := c.Admit(t.Context(), agenttest.OpenCmd("s1"), st.Report); g != nil || reason != control.CloseNoConsent {
		t.Fatalf("admit without a window = %v, %q; want refused, %s", g, reason, control.CloseNoConsent)
	}

	w, opened, err := c.Request("the amp hums", time.Hour)
	if err != nil || !opened || w.Code == "" || w.RequestID != "req_1" {
		t.Fatalf("Request = %+v, %v, %v", w, opened, err)
	}
	if srv.posted[0].Reason != "the amp hums" || srv.posted[0].ForS < 3590 || srv.posted[0].ForS > 3600 {
		t.Errorf("posted %+v; want the reason and an hour", srv.posted[0])
	}
	for _, p := range srv.posted {
		if strings.Contains(fmt.Sprint(p), strings.ReplaceAll(w.Code, "-", "")) || strings.Contains(fmt.Sprint(p), w.Code) {
			t.Fatal("the code went to the server")
		}
	}
	again, opened, err := c.Request("other", 5*time.Minute)
	if err != nil || opened || again.Code != w.Code || !again.Ends.Equal(w.Ends) {
		t.Fatalf("asking again = %+v, %v, %v; want the open window", again, opened, err)
	}

	g, reason := c.Admit(t.Context(), agenttest.OpenCmd("s1"), st.Report)
	if g == nil || g.window == nil {
		t.Fatalf("admit with a window = %v, %q", g, reason)
	}
	if err := c.CheckCode(g, "s1", strings.ToLower(w.Code)); err != nil {
		t.Fatalf("the right code: %v", err)
	}
	for i := 1; i < MaxWrongCodes; i++ {
		err := c.CheckCode(g, "s1", "AAAA-AAAA-AAAA")
		want := fmt.Sprintf("%d tr", MaxWrongCodes-i)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("wrong code %d: %v; want %q left", i, err, want)
		}
	}
	if g.window.ctx.Err() != nil {
		t.Fatal("the window closed before the fifth wrong code")
	}
	err = c.CheckCode(g, "s1", "AAAA-AAAA-AAAA")
	if err == nil || !strings.Contains(err.Error(), "closed its support window") {
		t.Fatalf("fifth wrong code: %v", err)
	}
	// Even the right code is refused now, at once; the sessions end a
	// moment later, so that the refusal reaches the engineer.
	if err := c.CheckCode(g, "s1", w.Code); err == nil {
		t.Fatal("the right code works after the window closed")
	}
	select {
	case <-g.window.ctx.Done():
	case <-time.After(2 * wrongCodesGrace):
		t.Fatal("the window's sessions did not end")
	}
	if e, ok := errors.AsType[*End](context.Cause(g.window.ctx)); !ok || e.Reason != control.CloseWrongCodes {
		t.Fatalf("the window ended with %v; want %s", context.Cause(g.window.ctx), control.CloseWrongCodes)
	}
	testwait.For(t, 5*time.Second, "the server to hear of the wrong codes", func() bool { return srv.closedReason("req_1") == string(control.CloseWrongCodes) })
	if c.Status().Window != nil {
		t.Fatal("status still shows a window")
	}
	if g, _ := c.Admit(t.Context(), agenttest.OpenCmd("s2"), st.Report); g != nil {
		t.Fatal("a session got in after the window closed")
	}

	// A new window, a new code; the old one is just a wrong code there.
	w2, _, err := c.Request("", time.Hour)
	if err != nil || w2.Code == w.Code {
		t.Fatalf("new window %+v, %v; want a new code", w2, err)
	}
	g2, _ := c.Admit(t.Context(), agenttest.OpenCmd("s3"), st.Report)
	if err := c.CheckCode(g2, "s3", w.Code); err == nil || !strings.Contains(err.Error(), "wrong support code") {
		t.Fatalf("the old code in a new window: %v", err)
	}
	if got := st.List(); len(got) != 0 {
		t.Errorf("manual consent reported %v", got)
	}

	// Revoke closes it and tells the server.
	if !c.Revoke() {
		t.Fatal("Revoke closed no window")
	}
	testwait.For(t, 5*time.Second, "the server to hear of the revoke", func() bool { return srv.closedReason("req_2") == string(control.CloseRevoked) })
}

// TestWindowExpires: the window's end ends it (and so its sessions).
func TestWindowExpires(t *testing.T) {
	t.Parallel()
	c, srv := newTestConsent(t, Manual, nil)
	if _, _, err := c.Request("", 500*time.Millisecond); err == nil {
		t.Fatal("a window of half a second was opened")
	}
	if _, _, err := c.Request("", 25*time.Hour); err == nil {
		t.Fatal("a window of a day and more was opened")
	}
	_, _, err := c.Request("", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := c.Admit(t.Context(), agenttest.OpenCmd("s1"), func(control.State) {})
	select {
	case <-g.window.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the window did not end")
	}
	if e, _ := errors.AsType[*End](context.Cause(g.window.ctx)); e == nil || e.Reason != control.CloseConsentExpired {
		t.Errorf("the window ended with %v; want %s", context.Cause(g.window.ctx), control.CloseConsentExpired)
	}
	testwait.For(t, 5*time.Second, "the server to hear the window expired", func() bool { return srv.closedReason("req_1") == string(control.CloseConsentExpired) })
	if g, reason := c.Admit(t.Context(), agenttest.OpenCmd("s2"), func(control.State) {}); g != nil || reason != control.CloseNoConsent {
		t.Errorf("admit after the window: %v, %q", g, reason)
	}
}

// TestWindowWithoutServer: a window opens even when the server cannot be
// told, and says so.
func TestWindowWithoutServer(t *testing.T) {
	t.Parallel()
	c, srv := newTestConsent(t, Manual, nil)
	srv.fail = errors.New("cannot reach the Porthole server")
	w, opened, err := c.Request("", time.Hour)
	if err != nil || !opened || w.Code == "" || w.RequestID != "" || !strings.Contains(w.ServerError, "cannot reach") {
		t.Fatalf("Request with the server away = %+v, %v, %v", w, opened, err)
	}
}

// TestApproveConsent: a session waits, reported waiting_consent, until the
// owner answers or the time runs out; the owner sees who asks.
func TestApproveConsent(t *testing.T) {
	t.Parallel()
	c, srv := newTestConsent(t, Approve, func(o *Options) { o.Config.ApprovalTimeout = 300 * time.Millisecond })
	for _, tt := range []struct {
		name       string
		answer     func(session string)
		wantReason control.CloseReason
	}{
		{"approved", func(s string) { mustAnswer(t, c, s, true) }, ""},
		{"denied", func(s string) { mustAnswer(t, c, s, false) }, control.CloseDenied},
		{"unanswered", func(string) {}, control.CloseConsentTimeout},
	} {
		session := "ses-" + strings.ReplaceAll(tt.name, " ", "-")
		var st agenttest.States
		done := make(chan control.CloseReason, 1)
		go func() {
			g, reason := c.Admit(t.Context(), agenttest.OpenCmd(session), st.Report)
			if (g != nil) != (reason == "") {
				t.Errorf("%s: admit = %v, %q", tt.name, g, reason)
			}
			done <- reason
		}()
		testwait.For(t, 5*time.Second, tt.name+": the owner to see who asks", func() bool {
			p := c.Status().Pending
			return len(p) == 1 && p[0].Session == session && p[0].User == "ann@example.com" && p[0].Reason == "ticket 42"
		})
		tt.answer(session)
		if got := <-done; got != tt.wantReason {
			t.Errorf("%s: reason %q; want %q", tt.name, got, tt.wantReason)
		}
		if got := st.List(); len(got) != 1 || got[0] != (control.State{Kind: control.StateWaitingConsent, Session: session}) {
			t.Errorf("%s: reported %v; want waiting_consent", tt.name, got)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.posted) != 3 || srv.posted[0].Session != "ses-approved" {
		t.Errorf("approval requests %+v", srv.posted)
	}
	if _, err := c.Answer("", true); !errors.Is(err, ErrNoSuchApproval) {
		t.Errorf("answering with nothing waiting: %v", err)
	}
}

func mustAnswer(t *testing.T, c *Consent, session string, yes bool) {
	t.Helper()
	// A part of the id is enough.
	if got, err := c.Answer(session[4:], yes); err != nil || got != session {
		t.Errorf("Answer(%q) = %q, %v", session[4:], got, err)
	}
}

// TestApprovalEndsWithTheSession: a session closed while it waits (the
// server's close, the owner's revoke) stops waiting at once.
func TestApprovalEndsWithTheSession(t *testing.T) {
	t.Parallel()
	c, _ := newTestConsent(t, Approve, nil)
	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan control.CloseReason, 1)
	go func() {
		_, reason := c.Admit(ctx, agenttest.OpenCmd("s1"), func(control.State) {})
		done <- reason
	}()
	testwait.For(t, 5*time.Second, "the session to wait", func() bool { return len(c.Status().Pending) == 1 })
	cancel(&End{Reason: control.CloseRevoked})
	select {
	case got := <-done:
		if got != control.CloseRevoked {
			t.Errorf("reason %q; want %s", got, control.CloseRevoked)
		}
	case <-time.After(time.Second):
		t.Fatal("the approval kept waiting after its session ended")
	}
	if len(c.Status().Pending) != 0 {
		t.Error("the session still waits")
	}
}

func TestAutoConsent(t *testing.T) {
	t.Parallel()
	c, _ := newTestConsent(t, Auto, nil)
	g, reason := c.Admit(t.Context(), agenttest.OpenCmd("s1"), func(control.State) {})
	if g == nil || g.window != nil || reason != "" {
		t.Fatalf("auto admit = %v, %q; want a grant without a code", g, reason)
	}
}

func TestConsentModes(t *testing.T) {
	if _, err := New(Options{Config: Config{Mode: "trusting"}}); err == nil {
		t.Error("an unknown mode was accepted")
	}
	if _, err := New(Options{Config: Config{ApprovalTimeout: 11 * time.Minute}}); err == nil {
		t.Error("an approval timeout over 10 minutes was accepted")
	}
	c, err := New(Options{})
	if err != nil || c.Mode() != Manual {
		t.Errorf("the default mode is %v (%v); want manual", c.Mode(), err)
	}
}
