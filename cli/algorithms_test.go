//go:build linux

package cli

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/sshalgo"
)

// loginLog is a slog.Handler that keeps the device's "engineer connected"
// and "command started" lines, each as its attributes.
type loginLog struct {
	parent  *loginLog // where records go; nil: this one
	attrs   []slog.Attr
	mu      sync.Mutex
	logins  []map[string]string
	started []map[string]string
}

func (l *loginLog) root() *loginLog {
	if l.parent != nil {
		return l.parent
	}
	return l
}

func (l *loginLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *loginLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "engineer connected" && r.Message != "command started" {
		return nil
	}
	m := map[string]string{}
	for _, a := range l.attrs {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	root := l.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	if r.Message == "command started" {
		root.started = append(root.started, m)
	} else {
		root.logins = append(root.logins, m)
	}
	return nil
}

func (l *loginLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &loginLog{parent: l.root(), attrs: append(slices.Clone(l.attrs), attrs...)}
}

func (l *loginLog) WithGroup(string) slog.Handler { return l }

// all returns the logins logged so far.
func (l *loginLog) all() []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.logins)
}

// wantCipher is the cipher the device gets every client to use on this
// machine.
func wantCipher() string {
	if sshalgo.AESHardware() {
		return ssh.CipherAES128GCM
	}
	return ssh.CipherChaCha20Poly1305
}

// TestDataPathAlgorithms: `porthole ssh` and the device agree on the
// hybrid post-quantum key exchange and on AES-GCM (ChaCha20-Poly1305 on a
// machine without AES instructions), as the device's log says.
func TestDataPathAlgorithms(t *testing.T) {
	t.Parallel()
	p := startDataPath(t, pathOpts{})
	r := startCLI(t, p.env, nil, "ssh", "dev1", "--", "echo ok")
	if err := r.wait(t); err != nil || r.stdout.String() != "ok\n" {
		t.Fatalf("porthole ssh: %q, %v\n%s", r.stdout, err, r.stderr)
	}
	logins := p.logins.all()
	if len(logins) != 1 {
		t.Fatalf("the device logged %d logins; want 1: %v", len(logins), logins)
	}
	if got := logins[0]; got["kex"] != ssh.KeyExchangeMLKEM768X25519 || got["cipher_in"] != wantCipher() || got["cipher_out"] != wantCipher() {
		t.Errorf("the device logged %v; want kex %s, ciphers %s", got, ssh.KeyExchangeMLKEM768X25519, wantCipher())
	}
	// The command ran on the session channel the device opened at login,
	// the connection's first and only one.
	p.logins.mu.Lock()
	started := slices.Clone(p.logins.started)
	p.logins.mu.Unlock()
	if len(started) != 1 || started[0]["channel"] != "1" || !sshalgo.OffersLoginSession([]byte(logins[0]["client"])) {
		t.Errorf("the device logged the login %v and the commands %v; want one on channel 1, the login session", logins[0], started)
	}
}
