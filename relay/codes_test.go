package relay

import (
	"errors"
	"strings"
	"testing"

	"github.com/porthole/porthole/relay/relayproto"
)

// TestV2RefusalCodes: what the relay answers a device of the second
// protocol says whether trying again may help, so that the device reports
// the true cause (issue 11: a store that did not answer under load, or a
// session closed meanwhile, read as "was it deleted and enrolled
// again?"). A store that does not answer is no answer about the device,
// so its words may differ from the refusal of a stranger's login.
func TestV2RefusalCodes(t *testing.T) {
	t.Parallel()
	e := newV2Env(t, nil)
	key := e.enroll("acme", "dev1")
	e.open("ses_open", "acme", "dev1")
	e.open("ses_other", "acme", "dev2")
	e.setSession(Session{ID: "ses_closed", Fleet: "acme", Device: "dev1"})
	dev := e.mustDevice(t, "acme", "dev1", key)

	code := func(err error) string {
		re, ok := errors.AsType[*relayproto.ReplyError](err)
		if !ok {
			t.Fatalf("error %v is not the relay's reply", err)
		}
		return re.Code
	}
	for _, tt := range []struct{ session, code string }{
		{"ses_closed", relayproto.CodeClosed},
		{"ses_other", relayproto.CodeRefused},
		{"ses_nonexistent", relayproto.CodeRefused},
	} {
		_, err := dev.register(tt.session)
		if err == nil || code(err) != tt.code {
			t.Errorf("registering %s: %v; want code %s", tt.session, err, tt.code)
		}
	}
	if _, err := dev.register("ses_open"); err != nil {
		t.Fatalf("registering an open session: %v", err)
	}
	// An engineer's hello is answered by the same codes.
	engineer := func(session string) error {
		t.Helper()
		return e.engineer(t, e.certFor(t, newSigner(t), claimsFor(session, "acme", "dev1"))).Wait()
	}
	if err := engineer("ses_closed"); err == nil || code(err) != relayproto.CodeClosed {
		t.Errorf("an engineer of a closed session: %v; want code %s", err, relayproto.CodeClosed)
	}

	// The store stops answering.
	e.mu.Lock()
	e.lookupErr = errors.New("database is locked")
	e.mu.Unlock()
	e.open("ses_later", "acme", "dev1")
	if _, err := dev.register("ses_later"); err == nil || code(err) != relayproto.CodeUnavailable {
		t.Errorf("registering while the store fails: %v; want code %s", err, relayproto.CodeUnavailable)
	}
	if err := engineer("ses_later"); err == nil || code(err) != relayproto.CodeUnavailable {
		t.Errorf("an engineer while the store fails: %v; want code %s", err, relayproto.CodeUnavailable)
	}
	_, err := e.dialDevice(t, "acme", "dev1", key)
	if err == nil || code(err) != relayproto.CodeUnavailable || !strings.Contains(err.Error(), "try again") {
		t.Errorf("a device's login while the store fails: %v; want code %s, try again", err, relayproto.CodeUnavailable)
	}
	_, err = e.dialDevice(t, "acme", "ghost", key)
	if err == nil || code(err) != relayproto.CodeUnavailable {
		t.Errorf("a stranger's login while the store fails: %v; want the same answer as any device's", err)
	}
	e.mu.Lock()
	e.lookupErr = nil
	e.mu.Unlock()
	_, err = e.dialDevice(t, "acme", "ghost", key)
	if err == nil || code(err) != relayproto.CodeRefused || err.Error() != "the relay refused this device's login" {
		t.Errorf("a stranger's login: %v; want the plain refusal", err)
	}
}
