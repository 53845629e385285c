package cli

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/porthole/porthole/apitype"
)

// TestReapProxy: once the proxy has ended, the reaper closes its session
// with the login the proxy had; if it cannot tell that the proxy ended,
// it closes nothing.
func TestReapProxy(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"DELETE /api/v1/sessions/ses_1": answer(apitype.Session{ID: "ses_1", State: apitype.SessionClosed}),
	})
	env := f.loggedIn(t)
	a := &app{io: IO{Getenv: func(k string) string { return env[k] }}}
	waited := false
	if err := a.reapProxy(context.Background(), func() error { waited = true; return nil }, "ses_1"); err != nil {
		t.Fatal(err)
	}
	if got := f.seen(); !waited || !slices.Contains(got, "DELETE /api/v1/sessions/ses_1") {
		t.Errorf("the reaper waited %v and made %v; want it to wait, then close ses_1", waited, got)
	}
	errWatch := errors.New("cannot watch")
	if err := a.reapProxy(context.Background(), func() error { return errWatch }, "ses_1"); !errors.Is(err, errWatch) {
		t.Errorf("reapProxy = %v; want the watch's error", err)
	}
	if got := f.seen(); len(got) != 0 {
		t.Errorf("a reaper that could not watch made %v; want nothing", got)
	}
}

func TestReaperArgs(t *testing.T) {
	if got, want := reaperArgs("", 4242, "ses_1"), []string{reaperCommand, "4242", "ses_1"}; !slices.Equal(got, want) {
		t.Errorf("reaperArgs = %q; want %q", got, want)
	}
	got := reaperArgs("https://p.example.com:8443", 4242, "ses_1")
	if want := []string{"--server", "https://p.example.com:8443", reaperCommand, "4242", "ses_1"}; !slices.Equal(got, want) {
		t.Errorf("reaperArgs with --server = %q; want %q", got, want)
	}
	// The command line parses as the hidden command.
	if cmd, _, err := newRoot(&app{}).Find(got); err != nil || cmd.Name() != reaperCommand {
		t.Errorf("porthole %q finds %v, %v; want the proxy-reaper command", got, cmd, err)
	}
}
