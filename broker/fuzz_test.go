package broker

import (
	"crypto/ed25519"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/porthole/porthole/control"
)

// FuzzAuthenticate feeds the fields of a CONNECT, as any client may send
// them, to the broker's authentication and keep-alive checks. Two devices
// are enrolled. A connection is let in only as the device its username
// names, with the one password that device's key mints for that second
// (the fuzzer cannot sign), with no client id but its username and no last
// will but on its own state topic; the identity it gets has exactly that
// device's two topics, and the keep-alive it is granted lies within the
// broker's bounds.
func FuzzAuthenticate(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	keys := map[string]ed25519.PrivateKey{}
	reg := &registry{keys: map[string]ed25519.PublicKey{}}
	for i, name := range []string{"acme/dev-1", "acme/dev-2"} {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = byte(i + 1)
		keys[name] = ed25519.NewKeyFromSeed(seed)
		reg.keys[name] = keys[name].Public().(ed25519.PublicKey)
	}
	b, err := New(Config{Logger: slog.New(slog.DiscardHandler), DeviceKey: reg.DeviceKey, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = b.Close() })
	pw := func(name string) string {
		fleet, device, _ := strings.Cut(name, "/")
		return control.DevicePassword(keys[name], fleet, device, now)
	}
	state := control.TopicPrefix + "acme/dev-1/state"
	f.Add("acme/dev-1", pw("acme/dev-1"), "", "", false, "", uint16(60), byte(5))
	f.Add("acme/dev-1", pw("acme/dev-1"), "acme/dev-1", state, true, "", uint16(0), byte(5))
	f.Add("acme/dev-1", pw("acme/dev-1"), "", state, true, "", uint16(0), byte(4))
	f.Add("acme/dev-2", pw("acme/dev-1"), "", "", false, "", uint16(60), byte(4))
	f.Add("acme/dev-1", pw("acme/dev-1"), "other", control.TopicPrefix+"acme/dev-2/state", true, "SCRAM", uint16(1), byte(5))
	f.Add("acme/dev-3", pw("acme/dev-1"), "", "", false, "", uint16(65535), byte(5))
	f.Fuzz(func(t *testing.T, username, password, clientID, willTopic string, will bool, authMethod string, keepAlive uint16, version byte) {
		pk := packets.Packet{ProtocolVersion: version, Connect: packets.ConnectParams{
			UsernameFlag: username != "", PasswordFlag: password != "", Username: []byte(username), Password: []byte(password),
			ClientIdentifier: clientID, WillFlag: will, WillTopic: willTopic, Keepalive: keepAlive,
		}}
		pk.Properties.AuthenticationMethod = authMethod
		if ka, r := b.keepAlive(pk); r == nil {
			lo, hi := uint16(b.cfg.MinKeepAlive/time.Second), uint16(b.cfg.MaxKeepAlive/time.Second)
			if ka < lo || ka > hi || keepAlive != 0 && keepAlive >= lo && keepAlive <= hi && ka != keepAlive {
				t.Fatalf("asked for keep-alive %d, granted %d; bounds %d to %d", keepAlive, ka, lo, hi)
			}
		} else if version >= 5 {
			t.Fatalf("MQTT 5 keep-alive %d refused: %v", keepAlive, r)
		}
		id, r := b.authenticate(pk)
		if r != nil {
			if id != nil || r.code.Code < 0x80 || r.err == nil {
				t.Fatalf("refusal %+v with identity %+v", r, id)
			}
			return
		}
		key, ok := keys[username]
		if !ok || id.username != username || id.fleet+"/"+id.device != username || authMethod != "" {
			t.Fatalf("let in %q (auth method %q) as %+v", username, authMethod, id)
		}
		parts := strings.Split(password, ".")
		if len(parts) != 3 {
			t.Fatalf("let in %s with password %q", username, password)
		}
		secs, _ := strconv.ParseInt(parts[1], 10, 64)
		if want := control.DevicePassword(key, id.fleet, id.device, time.Unix(secs, 0)); password != want {
			t.Fatalf("let in %s with password %q; its key mints %q", username, password, want)
		}
		if clientID != "" && clientID != username || will && willTopic != id.stateTopic {
			t.Fatalf("let in %s with client id %q and last will on %q", username, clientID, willTopic)
		}
		cmd, _ := control.CmdTopic(id.fleet, id.device)
		st, _ := control.StateTopic(id.fleet, id.device)
		if id.cmdTopic != cmd || id.stateTopic != st {
			t.Fatalf("%s may use %q and %q; want %q and %q", username, id.cmdTopic, id.stateTopic, cmd, st)
		}
	})
}
