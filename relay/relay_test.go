package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/sessioncert"
)

func TestSplice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev.mustRegister(t, "ses_1")

	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")
	ch, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, "hello, device")
	roundTrip(t, ch, "and again")

	// The device learns the session and the engineer's address, as the
	// relay saw it; not what the engineer's client claimed.
	offers := dev.offers()
	host, port, _ := net.SplitHostPort(eng.LocalAddr().String())
	wantPort, _ := strconv.Atoi(port)
	if len(offers) != 1 || offers[0].Addr != "ses_1" || offers[0].Port != 0 ||
		offers[0].OrigHost != host || offers[0].OrigPort != uint32(wantPort) {
		t.Errorf("forwarded-tcpip payloads = %+v; want one for ses_1 port 0 from %s", offers, eng.LocalAddr())
	}
	if st := e.relay.Stats(); st != (Stats{Devices: 1, Engineers: 1, Registrations: 1, Splices: 1}) {
		t.Errorf("Stats = %+v", st)
	}

	// A half-close passes through: the echo ends, and its end comes back.
	if err := ch.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(ch); err != nil || len(rest) != 0 {
		t.Errorf("after CloseWrite read %q, %v; want EOF", rest, err)
	}
	ch.Close()
	testwait.For(t, 5*time.Second, "the splice to end", func() bool { return e.relay.Stats().Splices == 0 })
	if n := e.refusalCount(); n != 0 {
		t.Errorf("%d refusals; want none", n)
	}
}

// TestSpliceLarge sends 16 MiB through the relay and back.
func TestSpliceLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev.mustRegister(t, "ses_1")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")
	ch, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}

	data := make([]byte, 16<<20)
	rand.Read(data)
	sent := make(chan error, 1)
	go func() {
		_, err := ch.Write(data)
		if err == nil {
			err = ch.CloseWrite()
		}
		sent <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, ch)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(data); n != int64(len(data)) || string(h.Sum(nil)) != string(want[:]) {
		t.Fatalf("got %d bytes back with another checksum; want %d bytes, equal", n, len(data))
	}
	ch.Close()
}

// TestParallelChannels runs several channels of one session at once, as a
// shell and an scp would, from one engineer connection and from two.
func TestParallelChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev.mustRegister(t, "ses_1")
	engs := []*ssh.Client{e.mustEngineer(t, "ses_1", "acme", "dev1"), e.mustEngineer(t, "ses_1", "acme", "dev1")}

	var chans []ssh.Channel
	for i := range 6 {
		ch, err := openDirect(engs[i%2], "ses_1")
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	testwait.For(t, 5*time.Second, "six splices", func() bool { return e.relay.Stats().Splices == 6 })
	var wg sync.WaitGroup
	for i, ch := range chans {
		wg.Go(func() {
			for j := range 20 {
				roundTrip(t, ch, strings.Repeat(strconv.Itoa(i), 1000+j))
			}
			ch.Close()
		})
	}
	wg.Wait()
	testwait.For(t, 5*time.Second, "the splices to end", func() bool { return e.relay.Stats().Splices == 0 })
}

func TestDeviceRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_mine", "acme", "dev1")
	e.open("ses_other", "acme", "dev2")
	e.open("ses_fleet", "other", "dev1") // same device name, another fleet
	e.setSession(Session{ID: "ses_closed", Fleet: "acme", Device: "dev1"})
	e.setSession(Session{ID: "ses_ended", Fleet: "acme", Device: "dev1", Open: true, Ends: time.Now().Add(-time.Minute)})
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	other := e.mustDevice(t, "acme", "dev2", e.enroll("acme", "dev2"))
	other.mustRegister(t, "ses_other")

	t.Run("channels", func(t *testing.T) {
		for _, kind := range []string{"direct-tcpip", "session", "forwarded-tcpip", "x11", "direct-streamlocal@openssh.com"} {
			var payload []byte
			if kind == "direct-tcpip" {
				payload = ssh.Marshal(directRequest{Host: "ses_other", Port: 22})
			}
			_, _, err := dev.conn.OpenChannel(kind, payload)
			var oce *ssh.OpenChannelError
			if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
				t.Errorf("device opening %s: err = %v; want prohibited", kind, err)
			}
			if f := e.refusal(t, "channel "+kind); f.Role != RoleDevice || f.Fleet != "acme" || f.Device != "dev1" || f.Why == "" {
				t.Errorf("refusal = %+v", f)
			}
		}
		if offers := other.offers(); len(offers) != 0 {
			t.Errorf("the other device was offered %+v", offers)
		}
	})

	for _, tt := range []struct {
		name, id string
		port     uint32
		why      string
	}{
		{"another device's session", "ses_other", 0, "not on device acme/dev1"},
		{"another fleet's session", "ses_fleet", 0, "not on device acme/dev1"},
		{"an unknown session", "ses_nope", 0, "does not exist"},
		{"a closed session", "ses_closed", 0, "is closed"},
		{"an ended session", "ses_ended", 0, "has ended"},
		{"a port", "ses_mine", 2222, "port 2222"},
		{"no session", "", 0, "no session named"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, _, err := dev.register(tt.id, tt.port)
			if err != nil || ok {
				t.Fatalf("tcpip-forward %q port %d = %v, %v; want refused", tt.id, tt.port, ok, err)
			}
			found := false
			e.mu.Lock()
			for _, f := range e.refusals {
				if f.What == "tcpip-forward" && f.Session == tt.id && strings.Contains(f.Why, tt.why) {
					found = true
				}
			}
			e.mu.Unlock()
			if !found {
				t.Errorf("no tcpip-forward refusal for %q saying %q", tt.id, tt.why)
			}
		})
	}

	t.Run("other global requests", func(t *testing.T) {
		for _, kind := range []string{"streamlocal-forward@openssh.com", "no-such-request"} {
			if ok, _, err := dev.conn.SendRequest(kind, true, nil); err != nil || ok {
				t.Errorf("%s = %v, %v; want refused", kind, ok, err)
			}
			e.refusal(t, "global request "+kind)
		}
		before := e.refusalCount()
		if ok, _, err := dev.conn.SendRequest(keepAliveRequest, true, nil); err != nil || ok {
			t.Errorf("keepalive = %v, %v; want answered false", ok, err)
		}
		if n := e.refusalCount(); n != before {
			t.Errorf("a keepalive was reported as a refusal")
		}
	})

	// After all that, the device still serves its own session, and the
	// other device's session still goes to the other device.
	dev.mustRegister(t, "ses_mine")
	ch, err := openDirect(e.mustEngineer(t, "ses_other", "acme", "dev2"), "ses_other")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, "still mine")
	ch.Close()
	if len(dev.offers()) != 0 {
		t.Errorf("acme/dev1 was offered a channel of acme/dev2's session")
	}
}

func TestEngineerRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	e.open("ses_2", "acme", "dev2")
	dev1 := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev1.mustRegister(t, "ses_1")
	dev2 := e.mustDevice(t, "acme", "dev2", e.enroll("acme", "dev2"))
	dev2.mustRegister(t, "ses_2")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")

	t.Run("tcpip-forward", func(t *testing.T) {
		ok, _, err := eng.SendRequest("tcpip-forward", true, ssh.Marshal(forwardRequest{Addr: "ses_1"}))
		if err != nil || ok {
			t.Fatalf("tcpip-forward = %v, %v; want refused", ok, err)
		}
		if f := e.refusal(t, "tcpip-forward"); f.Role != RoleEngineer || f.Session != "ses_1" || f.Engineer != "ann@example.com" {
			t.Errorf("refusal = %+v", f)
		}
		// Nothing was registered: the device still gets the channel.
		ch, err := openDirect(eng, "ses_1")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, ch, "x")
		ch.Close()
	})
	for _, kind := range []string{"session", "forwarded-tcpip", "direct-streamlocal@openssh.com"} {
		t.Run("channel "+kind, func(t *testing.T) {
			_, _, err := eng.OpenChannel(kind, nil)
			var oce *ssh.OpenChannelError
			if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
				t.Fatalf("open %s: %v; want prohibited", kind, err)
			}
			e.refusal(t, "channel "+kind)
		})
	}
	for _, host := range []string{"ses_2", "127.0.0.1", "localhost", "SES_1", "ses_1 ", ""} {
		t.Run("direct-tcpip to "+strconv.Quote(host), func(t *testing.T) {
			_, err := openDirect(eng, host)
			var oce *ssh.OpenChannelError
			if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited || !strings.Contains(oce.Message, "ses_1 only") {
				t.Fatalf("direct-tcpip to %q: %v; want prohibited", host, err)
			}
		})
	}
	if offers := dev2.offers(); len(offers) != 0 {
		t.Errorf("acme/dev2 was offered %+v", offers)
	}
	if st := e.relay.Stats(); st.Engineers != 1 || st.Registrations != 2 {
		t.Errorf("Stats = %+v; the engineer should still be connected", st)
	}
}

func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	e.open("ses_2", "acme", "dev2")
	e.setSession(Session{ID: "ses_closed", Fleet: "acme", Device: "dev1"})
	e.setSession(Session{ID: "ses_ended", Fleet: "acme", Device: "dev1", Open: true, Ends: time.Now().Add(-time.Second)})
	devKey := e.enroll("acme", "dev1")
	otherCA := newSigner(t)
	engKey := newSigner(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSigner, err := ssh.NewSignerFromKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	expired := claimsFor("ses_1", "acme", "dev1")
	expired.ValidAfter, expired.ValidBefore = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	e.enroll("acme", "gone")
	e.deleteDevice("acme", "gone")

	for _, tt := range []struct {
		name string
		user string
		key  ssh.Signer
		why  string // in the refusal, and in the banner for engineers
	}{
		{"engineer with a bare key", "ses_1", engKey, "not a certificate"},
		{"engineer with a device's key", "ses_1", devKey, "not a certificate"},
		{"certificate from another CA", "ses_1", certBy(t, otherCA, engKey, claimsFor("ses_1", "acme", "dev1")), "another authority"},
		{"expired certificate", "ses_1", e.certFor(t, engKey, expired), "expired"},
		{"certificate naming another device", "ses_1", e.certFor(t, engKey, claimsFor("ses_2", "acme", "dev1")), "not on device acme/dev1"},
		{"certificate naming another fleet", "ses_1", e.certFor(t, engKey, claimsFor("ses_1", "other", "dev1")), "not on device other/dev1"},
		{"certificate for an unknown session", "ses_x", e.certFor(t, engKey, claimsFor("ses_x", "acme", "dev1")), "does not exist"},
		{"certificate for a closed session", "x", e.certFor(t, engKey, claimsFor("ses_closed", "acme", "dev1")), "is closed"},
		{"certificate for an ended session", "x", e.certFor(t, engKey, claimsFor("ses_ended", "acme", "dev1")), "has ended"},
		{"device with another key", "acme/dev1", newSigner(t), "not the device's enrolled key"},
		{"device with an ECDSA key", "acme/dev1", ecSigner, "ed25519"},
		{"device with a certificate", "acme/dev1", e.certFor(t, engKey, claimsFor("ses_1", "acme", "dev1")), "not a certificate"},
		{"unknown device", "acme/nobody", devKey, "no such device"},
		{"deleted device", "acme/gone", devKey, "no such device"},
		{"device name in another fleet", "other/dev1", devKey, "no such device"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.refusalCount()
			conn, _, _, err := e.dial(tt.user, tt.key)
			if err == nil {
				conn.Close()
				t.Fatal("logged in; want refused")
			}
			isDevice := strings.Contains(tt.user, "/")
			if !isDevice && !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q; want the banner to say %q", err, tt.why)
			}
			if isDevice && strings.Contains(err.Error(), "porthole relay:") {
				t.Errorf("error %q: a device login is refused without a banner", err)
			}
			var found bool
			e.mu.Lock()
			for _, f := range e.refusals[before:] {
				found = found || (f.What == "login" && strings.Contains(f.Why, tt.why))
			}
			e.mu.Unlock()
			if !found {
				t.Errorf("no login refusal saying %q", tt.why)
			}
		})
	}
	if st := e.relay.Stats(); st.Devices != 0 || st.Engineers != 0 {
		t.Errorf("Stats = %+v; want nobody logged in", st)
	}
}

func TestRegistrationWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.RegistrationWait = 300 * time.Millisecond })
	e.open("ses_1", "acme", "dev1")
	key := e.enroll("acme", "dev1")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")

	t.Run("no device", func(t *testing.T) {
		start := time.Now()
		_, err := openDirect(eng, "ses_1")
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed || oce.Message != errNotRegistered.Error() {
			t.Fatalf("direct-tcpip: %v; want %q", err, errNotRegistered)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
			t.Errorf("rejected after %v; want about 300ms", d)
		}
	})
	t.Run("device comes during the wait", func(t *testing.T) {
		type result struct {
			ch  ssh.Channel
			err error
		}
		// Logged in first: under load (-race, the package's tests in
		// parallel) a login alone can take most of the 300 ms.
		dev := e.mustDevice(t, "acme", "dev1", key)
		opened := make(chan result, 1)
		go func() {
			ch, err := openDirect(eng, "ses_1")
			opened <- result{ch, err}
		}()
		dev.mustRegister(t, "ses_1")
		res := <-opened
		if res.err != nil {
			t.Fatal(res.err)
		}
		roundTrip(t, res.ch, "just in time")
		res.ch.Close()
	})
}

func TestDeviceRefusesChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	conn, chans, reqs, err := e.dial("acme/dev1", e.enroll("acme", "dev1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	go func() {
		for nc := range chans {
			_ = nc.Reject(ssh.ConnectionFailed, "the owner revoked access")
		}
	}()
	if ok, _, err := conn.SendRequest("tcpip-forward", true, ssh.Marshal(forwardRequest{Addr: "ses_1"})); !ok || err != nil {
		t.Fatalf("register = %v, %v", ok, err)
	}
	_, err = openDirect(e.mustEngineer(t, "ses_1", "acme", "dev1"), "ses_1")
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || !strings.Contains(oce.Message, "the owner revoked access") {
		t.Fatalf("direct-tcpip: %v; want the device's reason", err)
	}
}

func TestCloseSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	e.open("ses_2", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev.mustRegister(t, "ses_1")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")
	ch, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, "before")
	// A second engineer, still waiting for a channel, is cut too.
	eng2 := e.mustEngineer(t, "ses_1", "acme", "dev1")

	start := time.Now()
	e.closeSession("ses_1")
	if _, err := io.ReadAll(ch); err != nil {
		t.Logf("read after CloseSession: %v", err)
	}
	for i, c := range []ssh.Conn{eng, eng2, dev.conn} {
		waited := make(chan struct{})
		go func() { c.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(2 * time.Second):
			t.Fatalf("connection %d still open after CloseSession", i)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("CloseSession took %v to cut everything", d)
	}
	testwait.For(t, 5*time.Second, "nothing left", func() bool { return e.relay.Stats() == Stats{} })
	// The device cannot bring it back.
	dev2 := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	if ok, _, _ := dev2.register("ses_1", 0); ok {
		t.Error("a closed session was registered again")
	}

	// A device serving two sessions keeps its connection when one is cut.
	e.open("ses_3", "acme", "dev1")
	dev2.mustRegister(t, "ses_2")
	dev2.mustRegister(t, "ses_3")
	e.closeSession("ses_2")
	if st := e.relay.Stats(); st.Devices != 1 || st.Registrations != 1 {
		t.Errorf("Stats = %+v; want the device and ses_3 left", st)
	}
	ch3, err := openDirect(e.mustEngineer(t, "ses_3", "acme", "dev1"), "ses_3")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch3, "ses_3 lives")
	ch3.Close()
}

// TestCloseSessionDuringLookup: a registration whose lookup began before
// the session was cut must not bring it back, even if the lookup saw it
// open.
func TestCloseSessionDuringLookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))

	gate := make(chan struct{})
	e.mu.Lock()
	e.sessionGate = gate
	calls := e.sessionCalls
	e.mu.Unlock()
	answered := make(chan bool, 1)
	go func() {
		ok, _, _ := dev.register("ses_1", 0)
		answered <- ok
	}()
	testwait.For(t, 5*time.Second, "the lookup to start", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.sessionCalls > calls
	})
	e.relay.CloseSession("ses_1") // the store still says open: the lookup raced
	close(gate)
	if <-answered {
		t.Fatal("registration accepted after CloseSession")
	}
	if st := e.relay.Stats(); st.Registrations != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestDeviceDrop: a device's registrations are freed as soon as its
// connection drops, and a new connection can register at once.
func TestDeviceDrop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.RegistrationWait = 2 * time.Second })
	e.open("ses_1", "acme", "dev1")
	key := e.enroll("acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", key)
	dev.mustRegister(t, "ses_1")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")
	ch, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, "one")

	dev.conn.Close()
	testwait.For(t, 5*time.Second, "the registration to be freed", func() bool {
		st := e.relay.Stats()
		return st.Registrations == 0 && st.Devices == 0 && st.Splices == 0
	})
	if _, err := io.ReadAll(ch); err != nil {
		t.Logf("read after the device dropped: %v", err)
	}

	again := e.mustDevice(t, "acme", "dev1", key)
	again.mustRegister(t, "ses_1")
	ch, err = openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, "two")
	ch.Close()
}

// TestReplaceRegistration: a device that reconnects before the relay noticed
// its old connection died takes its session over; what ran on the old
// connection runs on.
func TestReplaceRegistration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	key := e.enroll("acme", "dev1")
	old := e.mustDevice(t, "acme", "dev1", key)
	old.mustRegister(t, "ses_1")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")
	first, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}

	fresh := e.mustDevice(t, "acme", "dev1", key)
	fresh.mustRegister(t, "ses_1")
	second, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, second, "new path")
	roundTrip(t, first, "old path")
	if n, m := len(old.offers()), len(fresh.offers()); n != 1 || m != 1 {
		t.Errorf("offers: old %d, fresh %d; want 1 each", n, m)
	}
	// The old connection no longer holds the session: cancelling there
	// changes nothing.
	if ok, _, _ := old.conn.SendRequest("cancel-tcpip-forward", true, ssh.Marshal(forwardRequest{Addr: "ses_1"})); ok {
		t.Error("the replaced connection cancelled the session's registration")
	}
	if st := e.relay.Stats(); st.Registrations != 1 || st.Devices != 2 {
		t.Errorf("Stats = %+v", st)
	}
	first.Close()
	second.Close()
}

func TestCancelForward(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.RegistrationWait = 50 * time.Millisecond })
	e.open("ses_1", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev.mustRegister(t, "ses_1")
	if ok, _, err := dev.conn.SendRequest("cancel-tcpip-forward", true, ssh.Marshal(forwardRequest{Addr: "ses_1"})); !ok || err != nil {
		t.Fatalf("cancel-tcpip-forward = %v, %v", ok, err)
	}
	if st := e.relay.Stats(); st.Registrations != 0 || st.Devices != 1 {
		t.Errorf("Stats = %+v", st)
	}
	_, err := openDirect(e.mustEngineer(t, "ses_1", "acme", "dev1"), "ses_1")
	if err == nil || !strings.Contains(err.Error(), errNotRegistered.Error()) {
		t.Errorf("direct-tcpip after cancel: %v; want %q", err, errNotRegistered)
	}
	dev.mustRegister(t, "ses_1") // and back
}

func TestDisconnectDevice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	key := e.enroll("acme", "dev1")
	devs := []*testDevice{e.mustDevice(t, "acme", "dev1", key), e.mustDevice(t, "acme", "dev1", key)}
	devs[0].mustRegister(t, "ses_1")
	bystander := e.mustDevice(t, "acme", "dev2", e.enroll("acme", "dev2"))

	e.deleteDevice("acme", "dev1")
	e.relay.DisconnectDevice("acme", "dev1")
	for _, d := range devs {
		select {
		case <-d.done:
		case <-time.After(2 * time.Second):
			t.Fatal("a deleted device is still connected")
		}
	}
	testwait.For(t, 5*time.Second, "only acme/dev2 left", func() bool {
		st := e.relay.Stats()
		return st.Devices == 1 && st.Registrations == 0
	})
	if _, err := e.dialDevice(t, "acme", "dev1", key, nil); err == nil {
		t.Error("a deleted device logged in again")
	}
	if ok, _, err := bystander.conn.SendRequest(keepAliveRequest, true, nil); err != nil || ok {
		t.Errorf("the other device's connection: %v, %v", ok, err)
	}
}

// TestDisconnectDeviceDuringLogin: a device deleted while its login looks up
// its key does not stay connected.
func TestDisconnectDeviceDuringLogin(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	lookups := make(chan struct{}, 1)
	e := newEnv(t, func(c *Config) {
		lookup := c.DeviceKey
		c.DeviceKey = func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
			lookups <- struct{}{}
			<-gate
			return lookup(ctx, fleet, device)
		}
	})
	key := e.enroll("acme", "dev1")
	errc := make(chan error, 1)
	go func() {
		d, err := e.dialDevice(t, "acme", "dev1", key, nil)
		if err == nil {
			<-d.done // the relay must close it at once
		}
		errc <- err
	}()
	<-lookups
	e.relay.DisconnectDevice("acme", "dev1") // the store still has the key: the lookup raced
	close(gate)
	select {
	case <-errc:
	case <-time.After(3 * time.Second):
		t.Fatal("a device deleted during its login stayed connected")
	}
	if f := e.refusal(t, "login"); f.Why != errDeviceDeleted.Error() {
		t.Errorf("refusal = %+v", f)
	}
	if st := e.relay.Stats(); st.Devices != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	start := time.Now()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// The relay sends its version line, then gives up on a silent client.
	io.Copy(io.Discard, c)
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v; want about 200ms", d)
	}
	testwait.For(t, 5*time.Second, "the handshake slot to be freed", func() bool { return e.relay.Stats().Handshakes == 0 })
}

func TestMaxHandshakes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxHandshakes = 2 })
	var silent []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	testwait.For(t, 5*time.Second, "two handshakes", func() bool { return e.relay.Stats().Handshakes == 2 })

	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Errorf("third connection read %q, %v; want closed at once", b, err)
	}

	silent[0].Close()
	testwait.For(t, 5*time.Second, "a free slot", func() bool { return e.relay.Stats().Handshakes < 2 })
	e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.KeepAliveInterval = 30 * time.Millisecond })
	key := e.enroll("acme", "dev1")
	answering := e.mustDevice(t, "acme", "dev1", key)

	// A client that reads nothing answers nothing.
	silent, _, _, err := e.dial("acme/dev1", key)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waited := make(chan struct{})
	go func() { silent.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(3 * time.Second):
		t.Fatal("a client that answers no keep-alives is still connected")
	}
	if ok, _, err := answering.conn.SendRequest(keepAliveRequest, true, nil); err != nil || ok {
		t.Errorf("the answering client was cut: %v, %v", ok, err)
	}
	// The silent client sees its connection end a moment before the relay
	// has counted it gone.
	testwait.For(t, 5*time.Second, "the silent device to be gone, the answering one left", func() bool { return e.relay.Stats().Devices == 1 })
}

func TestActivity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.ActivityInterval = time.Minute })
	e.open("ses_1", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev.mustRegister(t, "ses_1")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")
	if n := e.activityCount(); n != 0 {
		t.Fatalf("%d activity calls before any channel", n)
	}
	ch, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		roundTrip(t, ch, "keystroke")
	}
	if n := e.activityCount(); n != 1 {
		t.Errorf("%d activity calls within one interval; want 1", n)
	}
	e.skew.Add(int64(time.Minute))
	roundTrip(t, ch, "later")
	roundTrip(t, ch, "and again")
	if n := e.activityCount(); n != 2 {
		t.Errorf("%d activity calls after an interval; want 2", n)
	}
	e.mu.Lock()
	if e.activity[0] != "ses_1" {
		t.Errorf("activity for %q; want ses_1", e.activity[0])
	}
	e.mu.Unlock()
	ch.Close()
}

// TestCertificateExpiry: an engineer's connection ends with its certificate.
func TestCertificateExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	c := claimsFor("ses_1", "acme", "dev1")
	c.ValidBefore = c.ValidBefore.Truncate(time.Second) // as the certificate carries it
	// The relay's clock runs to 300ms before the certificate's end.
	e.skew.Store(int64(time.Until(c.ValidBefore.Add(-300 * time.Millisecond))))
	eng, err := e.dialEngineer(t, e.certFor(t, newSigner(t), c))
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { eng.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(3 * time.Second):
		t.Fatal("still connected after the certificate expired")
	}
}

// TestSessionEnds: the relay cuts a session at its end by itself.
func TestSessionEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.setSession(Session{ID: "ses_1", Fleet: "acme", Device: "dev1", Open: true, Ends: time.Now().Add(300 * time.Millisecond)})
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev.mustRegister(t, "ses_1")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")
	ch, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, "before the end")
	select {
	case <-dev.done:
	case <-time.After(3 * time.Second):
		t.Fatal("the device's connection outlived its only session")
	}
	testwait.For(t, 5*time.Second, "everything to be cut", func() bool { return e.relay.Stats() == Stats{} })
}

func TestConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	good := e.relay.cfg
	for _, tt := range []struct {
		name  string
		tweak func(*Config)
		want  string
	}{
		{"no host key", func(c *Config) { c.HostKey = nil }, "HostKey is required"},
		{"no user CA", func(c *Config) { c.UserCA = nil }, "UserCA is required"},
		{"no device keys", func(c *Config) { c.DeviceKey = nil }, "DeviceKey is required"},
		{"no sessions", func(c *Config) { c.Session = nil }, "Session is required"},
		{"negative timeout", func(c *Config) { c.HandshakeTimeout = -time.Second }, "HandshakeTimeout -1s is negative"},
		{"negative cap", func(c *Config) { c.MaxHandshakes = -1 }, "MaxHandshakes -1 is negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.tweak(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v; want %q", err, tt.want)
			}
		})
	}
	r, err := New(Config{HostKey: good.HostKey, UserCA: good.UserCA, DeviceKey: good.DeviceKey, Session: good.Session})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.cfg; c.HandshakeTimeout != 10*time.Second || c.MaxHandshakes != 512 || c.MaxHandshakesPerSource != 32 || c.HelloTimeout != 5*time.Second || c.KeepAliveInterval != 30*time.Second ||
		c.RegistrationWait != 5*time.Second || c.ActivityInterval != 30*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := r.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Serve(l); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close = %v; want ErrClosed", err)
	}
}

// TestCloseCutsEverything: Close ends connections in every state, and
// their goroutines (TestMain checks that none is left).
func TestCloseCutsEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	e.open("ses_2", "acme", "dev2")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev.mustRegister(t, "ses_1")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")
	ch, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, "x")
	waiting := e.mustEngineer(t, "ses_2", "acme", "dev2") // waits for a device
	rejected := make(chan error, 1)
	go func() {
		_, err := openDirect(waiting, "ses_2")
		rejected <- err
	}()
	silent, err := net.Dial("tcp", e.addr) // in its handshake
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	testwait.For(t, 5*time.Second, "all in place", func() bool { return e.relay.Stats().Handshakes == 1 })

	if err := e.relay.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-rejected; err == nil {
		t.Error("a waiting channel opened after Close")
	}
	for _, c := range []ssh.Conn{dev.conn, eng, waiting} {
		c.Wait()
	}
	if st := e.relay.Stats(); st != (Stats{}) {
		t.Errorf("Stats after Close = %+v", st)
	}
	e.closedByTest = true
}

// TestInnerSSH runs SSH end to end through the relay, as the engineer's
// client and the device's embedded server do: the engineer dials the
// session with x/crypto's Client.Dial, and the device serves SSH on the
// forwarded channel, checking the same session certificate.
func TestInnerSSH(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	deviceHostKey := newSigner(t)
	dev, err := e.dialDevice(t, "acme", "dev1", e.enroll("acme", "dev1"), innerServer(e.userCA.PublicKey(), deviceHostKey))
	if err != nil {
		t.Fatal(err)
	}
	dev.mustRegister(t, "ses_1")
	engKey := e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1"))
	eng, err := e.dialEngineer(t, engKey)
	if err != nil {
		t.Fatal(err)
	}

	conn, err := eng.Dial("tcp", "ses_1:22")
	if err != nil {
		t.Fatal(err)
	}
	icc, chans, reqs, err := ssh.NewClientConn(conn, "ses_1", &ssh.ClientConfig{
		User:            "ann",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(engKey)},
		HostKeyCallback: ssh.FixedHostKey(deviceHostKey.PublicKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	inner := ssh.NewClient(icc, chans, reqs)
	defer inner.Close()
	var wg sync.WaitGroup
	for _, cmd := range []string{"bash -l", "scp -t /tmp"} {
		wg.Go(func() {
			s, err := inner.NewSession()
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			out, err := s.Output(cmd)
			if err != nil || string(out) != "ran: "+cmd {
				t.Errorf("inner exec %q = %q, %v", cmd, out, err)
			}
		})
	}
	wg.Wait()
}

// innerServer is a tiny stand-in for the device's embedded SSH server: it
// runs SSH on the forwarded channel, lets in holders of a session
// certificate, and answers each exec with "ran: <command>".
func innerServer(userCA ssh.PublicKey, hostKey ssh.Signer) func(ssh.Channel) {
	return func(ch ssh.Channel) {
		cfg := &ssh.ServerConfig{
			PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil },
			VerifiedPublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
				_, err := sessioncert.Verify(userCA, key, time.Now())
				return nil, err
			},
		}
		cfg.AddHostKey(hostKey)
		sc, chans, reqs, err := ssh.NewServerConn(channelConn{ch}, cfg)
		if err != nil {
			ch.Close()
			return
		}
		defer sc.Close()
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			if nc.ChannelType() != "session" {
				_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
				continue
			}
			sch, sreqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go func() {
				for req := range sreqs {
					var exec struct{ Command string }
					if req.Type != "exec" || ssh.Unmarshal(req.Payload, &exec) != nil {
						_ = req.Reply(false, nil)
						continue
					}
					_ = req.Reply(true, nil)
					_, _ = io.WriteString(sch, "ran: "+exec.Command)
					_, _ = sch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
					_ = sch.Close()
				}
			}()
		}
	}
}

// channelConn lets an SSH channel carry an SSH connection.
type channelConn struct{ ssh.Channel }

func (channelConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (channelConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (channelConn) SetDeadline(time.Time) error      { return nil }
func (channelConn) SetReadDeadline(time.Time) error  { return nil }
func (channelConn) SetWriteDeadline(time.Time) error { return nil }

// TestDeviceLeft: a device connection that drops tells which sessions it
// served, so the server can close them; a registration says so, and is
// told (the session is up, whatever becomes of the device's tunnel_up).
func TestDeviceLeft(t *testing.T) {
	t.Parallel()
	left := make(chan []string, 1)
	registered := make(chan string, 1)
	e := newEnv(t, func(c *Config) {
		c.DeviceLeft = func(ids []string) { left <- ids }
		c.DeviceRegistered = func(fleet, device, id string) { registered <- fleet + "/" + device + " " + id }
	})
	e.open("ses_1", "acme", "dev1")
	key := e.enroll("acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", key)
	dev.mustRegister(t, "ses_1")
	select {
	case got := <-registered:
		if got != "acme/dev1 ses_1" {
			t.Errorf("DeviceRegistered(%s); want acme/dev1 ses_1", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("DeviceRegistered was not called")
	}
	if !e.relay.Registered("ses_1") || e.relay.Registered("ses_2") {
		t.Fatal("Registered does not match the registrations")
	}
	dev.conn.Close()
	select {
	case ids := <-left:
		if len(ids) != 1 || ids[0] != "ses_1" {
			t.Errorf("DeviceLeft(%v); want [ses_1]", ids)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("DeviceLeft was not called after the device dropped")
	}
	if e.relay.Registered("ses_1") {
		t.Error("a dropped device's session is still registered")
	}
}
