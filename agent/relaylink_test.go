package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/relay/relayproto"
)

// TestRelayLinkDialHoldsNothing: while the relay's second protocol is being
// dialled (slowly: a relay under load), a session on another connection
// still ends at once; the dial does not hold the lock the sessions share
// (issue 11: with fifty sessions at once, every session's registration,
// end and engineer waited on whichever dial was under way).
func TestRelayLinkDialHoldsNothing(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, uniqueName("dev"), nil)
	dialing, unblock := make(chan struct{}), make(chan struct{})
	var once sync.Once // dialled twice: TLS, then a WebSocket
	tn, err := NewTunnels(TunnelOptions{State: d.State, Consent: manualConsent(t),
		NetDial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			once.Do(func() { close(dialing) })
			select {
			case <-unblock:
			case <-ctx.Done():
			}
			return nil, context.Canceled
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer close(unblock)

	// A connection that serves one session, as if dialled before.
	a, b := net.Pipe()
	defer b.Close()
	mux, err := yamux.Server(a, relayproto.MuxConfig(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	addr, u, err := tn.relayAddr("")
	if err != nil {
		t.Fatal(err)
	}
	old := &relayLink{addr: addr, mux: mux, users: 1, regs: map[string]*tunnel{}}
	_ = mux.Close() // it has just died: the next session dials anew

	ls := &tn.links
	ls.mu.Lock()
	ls.cur = map[string]*relayLink{addr: old}
	ls.mu.Unlock()
	go func() { _, _ = ls.acquire(context.Background(), addr, u) }()
	<-dialing

	released := make(chan struct{})
	go func() {
		ls.release(old, "ses_old") // the old connection's session ends
		close(released)
	}()
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("a session's end waited for another session's dial")
	}
}

// TestRelayFailure: a failure to reach the relay ends the session with its
// true cause (issue 11: every failure after the dial read "the Porthole
// relay refused dev1 (was it deleted and enrolled again?)").
func TestRelayFailure(t *testing.T) {
	reply := func(code string) error {
		return fmt.Errorf("%w: %w", errRefused, &relayproto.ReplyError{Reply: relayproto.Reply{Error: "x", Code: code}})
	}
	for _, tt := range []struct {
		name string
		err  error
		want control.CloseReason
	}{
		{"refused", reply(relayproto.CodeRefused), control.CloseRelayRefused},
		{"store did not answer", reply(relayproto.CodeUnavailable), control.CloseRelayBusy},
		{"session closed meanwhile", reply(relayproto.CodeClosed), control.CloseOnCommand},
		{"closed at once (TLS)", fmt.Errorf("tls: %w", io.EOF), control.CloseRelayBusy},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, control.CloseRelayBusy},
		{"no reply", fmt.Errorf("relayproto: reading the relay's reply: %w", io.ErrUnexpectedEOF), control.CloseRelayBusy},
		{"SSH closed at once", fmt.Errorf("the relay closed the connection: %w", fmt.Errorf("ssh: handshake failed: %w", io.EOF)), control.CloseRelayBusy},
		{"SSH login refused", fmt.Errorf("%w: ssh: unable to authenticate", errRefused), control.CloseRelayRefused},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, control.CloseRelayUnreachable},
		{"timeout", context.DeadlineExceeded, control.CloseRelayUnreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := relayFailure(tt.err); got != tt.want {
				t.Errorf("relayFailure(%v) = %s; want %s", tt.err, got, tt.want)
			}
		})
	}
}

// TestRelayBusyRetried: a relay that closes the device's connection before
// it can log in (past its caps) is dialled again after a moment, within
// the dial's time; another failure ends the attempts.
func TestRelayBusyRetried(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, uniqueName("dev"), nil)
	// A relay past its caps: it closes each connection at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var dials atomic.Int32
	tn, err := NewTunnels(TunnelOptions{State: d.State, Consent: manualConsent(t),
		NetDial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			// Each attempt dials twice: TLS, then a WebSocket.
			if dials.Add(1) <= 4 {
				var d net.Dialer
				return d.DialContext(ctx, network, ln.Addr().String())
			}
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	_, err = tn.registerV2(&tunnel{id: "ses_1", ctx: ctx, cancel: cancel}, "")
	if got := relayFailure(err); got != control.CloseRelayUnreachable || dials.Load() != 6 {
		t.Errorf("after %d dials: %v (%s); want two turned away, then the refused dial's unreachable", dials.Load(), err, got)
	}
}

// TestCloseUnknownSession: a close for a session the device does not hold
// is answered tunnel_down closed at once, so that a server waiting for the
// device's word on an engineer's close does not wait out its grace.
func TestCloseUnknownSession(t *testing.T) {
	t.Parallel()
	tn, _ := consentTunnels(t, manualConsent(t))
	var st agenttest.States
	tn.Close(context.Background(), &control.Command{Type: control.TypeClose, Session: "ses_gone"}, st.Report)
	if got, want := st.List(), []control.State{control.TunnelDown("ses_gone", control.CloseOnCommand)}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("reported %+v; want %+v", got, want)
	}
}

// manualConsent is the owner's consent in manual mode, with no window open.
func manualConsent(t *testing.T) *agentconsent.Consent {
	c := newTestConsent(t, agentconsent.Manual, nil)
	return c
}
