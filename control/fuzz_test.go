package control

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// FuzzVerify feeds arbitrary envelopes to Verify. It must never panic, and
// whatever it accepts must carry exactly the payload bytes of one of the
// seed commands signed below: the fuzzer cannot sign, so anything else
// getting through is a forgery. A rejected envelope must leave the nonce
// store untouched, and an accepted one must be refused as a replay the
// second time. Run it for a while with
//
//	go test ./control -run '^$' -fuzz FuzzVerify -fuzztime 30s
func FuzzVerify(f *testing.F) {
	key := testKey(1)
	signed := map[string]bool{}
	add := func(c Command) {
		env := mustSign(f, key, c)
		payload, _ := split(f, env)
		signed[string(payload)] = true
		f.Add(env)
	}
	for i, c := range []Command{openCmd(), openCmd(), openCmd(), policyCmd()} {
		switch i {
		case 1:
			c.Type, c.Relay, c.Ports = TypeClose, "", nil
		case 2:
			c.Device = "dev2"
		}
		c.Nonce = "fuzz-seed-nonce-000" + string(rune('0'+i))
		add(c)
	}
	// Signed, but refused for what they say: the fuzzer may turn them
	// into nothing that passes.
	for _, edit := range []func(*Command){
		func(c *Command) { c.NotAfter = testNow.Add(-time.Hour).Unix() },
		func(c *Command) { c.NotAfter = testNow.Add(time.Hour).Unix() },
		func(c *Command) { c.Type = "reboot" },
		func(c *Command) { c.Fleet = "other" },
		func(c *Command) { c.Ports = []int{0} },
		func(c *Command) { c.Policy = &Policy{ConsentFloor: "auto", Ports: []int{70000}} },
	} {
		c := openCmd()
		c.Nonce = "fuzz-refused-nonce-0"
		edit(&c)
		f.Add(signRawCmd(key, c))
	}
	good := mustSign(f, key, openCmd())
	payload, _ := split(f, good)
	signed[string(payload)] = true
	f.Add(flipBit(good))
	f.Add(bytes.Replace(good, []byte(`","sig":"`), []byte(`\n","sig":"`), 1)) // line break in the base64 payload
	f.Add(mustSign(f, testKey(2), openCmd()))
	f.Add(signRaw(key, []byte(`{"v":2}`)))
	f.Add([]byte(`{"payload":"","sig":""}`))
	f.Add([]byte(`{"payload":"e30=","sig":"AAAA","x":1}`))

	f.Fuzz(func(t *testing.T, env []byte) {
		nonces := &memNonces{}
		v := newTestVerifier(t, key, nonces)
		cmd, err := v.Verify(env, testNow)
		if err != nil {
			if cmd != nil {
				t.Fatalf("Verify returned a command with error %v", err)
			}
			if RejectReason(err) == ReasonInternal {
				t.Fatalf("Verify failed without a reject reason: %v", err)
			}
			if len(nonces.seen) != 0 {
				t.Fatalf("rejected envelope (%v) used up nonces %v", err, nonces.seen)
			}
			return
		}
		payload, sig, perr := openEnvelope(env)
		if perr != nil || !signed[string(payload)] {
			t.Fatalf("Verify accepted an envelope with unsigned payload %q", payload)
		}
		var e envelope
		json.Unmarshal(env, &e)
		if e.Payload != b64.EncodeToString(payload) || e.Sig != b64.EncodeToString(sig) {
			t.Fatalf("Verify accepted base64 it would not write: %q", env)
		}
		var again Command
		json.Unmarshal(payload, &again)
		a, _ := json.Marshal(again)
		b, _ := json.Marshal(cmd)
		if !bytes.Equal(a, b) || cmd.Device != testDevice || cmd.Fleet != testFleet {
			t.Fatalf("accepted command %s is not its signed payload %s", b, a)
		}
		if _, err := v.Verify(env, testNow); RejectReason(err) != ReasonReplayed {
			t.Fatalf("second Verify of an accepted envelope = %v; want %s", err, ReasonReplayed)
		}
	})
}

// FuzzDevicePassword: a device's MQTT login. ParseDeviceUsername accepts
// only what DeviceUsername writes, and CheckDevicePassword accepts only the
// one password DevicePassword mints for that device and second (ed25519
// signatures are deterministic), within DevicePasswordSkew, and only for
// the device whose key signed it: the fuzzer cannot sign.
func FuzzDevicePassword(f *testing.F) {
	priv := testKey(3)
	pub := priv.Public().(ed25519.PublicKey)
	minted := DevicePassword(priv, testFleet, testDevice, testNow)
	f.Add(testFleet+"/"+testDevice, minted, int64(0))
	f.Add(testFleet+"/"+testDevice, minted, int64(DevicePasswordSkew/time.Second)+1)
	f.Add(testFleet+"/"+testDevice, DevicePassword(priv, testFleet, testDevice, testNow.Add(-time.Minute)), int64(-30))
	f.Add(testFleet+"/dev2", minted, int64(0))
	f.Add(testFleet+"/"+testDevice, minted[:40]+"\r"+minted[40:], int64(0)) // base64 decoders skip line breaks
	f.Add("acme/dev1/x", "v1.0.AAAA", int64(0))
	f.Add("Acme/dev1", "v1.+1800000000."+strings.Repeat("A", 86), int64(0))
	f.Add("/", "v1.01800000000."+minted[len(minted)-86:], int64(0))
	f.Fuzz(func(t *testing.T, username, password string, skew int64) {
		fleet, device, ok := ParseDeviceUsername(username)
		if ok {
			if u, err := DeviceUsername(fleet, device); err != nil || u != username {
				t.Fatalf("ParseDeviceUsername(%q) = %q, %q; DeviceUsername gives %q, %v", username, fleet, device, u, err)
			}
		} else if fleet != "" || device != "" {
			t.Fatalf("ParseDeviceUsername(%q) refused but returned %q, %q", username, fleet, device)
		}
		fleet, device, _ = strings.Cut(username, "/")
		now := testNow.Add(time.Duration(skew%(1<<20)) * time.Second)
		if err := CheckDevicePassword(pub, fleet, device, password, now); err != nil {
			if !errors.Is(err, ErrDevicePassword) {
				t.Fatalf("CheckDevicePassword error %v does not wrap ErrDevicePassword", err)
			}
			return
		}
		if !ok {
			t.Fatalf("CheckDevicePassword accepted %q/%q, which ParseDeviceUsername refuses", fleet, device)
		}
		parts := strings.Split(password, ".")
		secs, _ := strconv.ParseInt(parts[1], 10, 64)
		ts := time.Unix(secs, 0)
		if want := DevicePassword(priv, fleet, device, ts); password != want {
			t.Fatalf("CheckDevicePassword accepted %q; the device would have sent %q", password, want)
		}
		if d := now.Sub(ts).Abs(); d > DevicePasswordSkew {
			t.Fatalf("CheckDevicePassword accepted a password %v away from now", d)
		}
	})
}

// FuzzParseDeviceKey: what ParseDeviceKey (and ParseControlKey, the same
// parser) accepts is an ed25519 key that written back as an
// authorized_keys line reads as itself; anything but one ssh-ed25519 key
// is refused.
func FuzzParseDeviceKey(f *testing.F) {
	line := authorizedLine(f, testKey(1).Public())
	f.Add(line)
	f.Add(line + " device dev1\n")
	f.Add(line + "\n" + line)
	f.Add("ssh-ed25519 AAAA")
	f.Add("ssh-rsa " + strings.Fields(line)[1])
	f.Add(`command="x" ` + line)
	f.Fuzz(func(t *testing.T, in string) {
		key, err := ParseDeviceKey(in)
		ckey, cerr := ParseControlKey(in)
		if (err == nil) != (cerr == nil) || !slices.Equal(key, ckey) {
			t.Fatalf("ParseDeviceKey = %x, %v but ParseControlKey = %x, %v", key, err, ckey, cerr)
		}
		if err != nil {
			return
		}
		if len(key) != ed25519.PublicKeySize {
			t.Fatalf("accepted a key of %d bytes", len(key))
		}
		again, err := ParseDeviceKey(authorizedLine(t, key))
		if err != nil || !again.Equal(key) {
			t.Fatalf("key %x written back reads as %x, %v", key, again, err)
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(in)); err != nil {
			t.Fatalf("accepted %q, which ssh refuses: %v", in, err)
		}
	})
}

// FuzzTopic: a topic parses as a state topic or a command topic (never
// both) only if StateTopic or CmdTopic writes exactly it, so a name can
// never carry a level, a wildcard or a system prefix into a topic.
func FuzzTopic(f *testing.F) {
	for _, s := range []string{
		"porthole/v1/acme/dev-1/state", "porthole/v1/acme/dev-1/cmd", StateFilter,
		"porthole/v1/acme/dev-1/state/x", "porthole/v1/a/b/c/state", "$share/g/" + StateFilter,
		"porthole/v1//dev/state", "porthole/v2/acme/dev/state",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		sf, sd, sok := ParseStateTopic(topic)
		cf, cd, cok := ParseCmdTopic(topic)
		if sok && cok {
			t.Fatalf("%q is both a state and a command topic", topic)
		}
		for _, p := range []struct {
			fleet, device string
			ok            bool
			make          func(string, string) (string, error)
		}{{sf, sd, sok, StateTopic}, {cf, cd, cok, CmdTopic}} {
			if !p.ok {
				if p.fleet != "" || p.device != "" {
					t.Fatalf("%q refused but parsed as %q, %q", topic, p.fleet, p.device)
				}
				continue
			}
			if again, err := p.make(p.fleet, p.device); err != nil || again != topic {
				t.Fatalf("%q parsed as %q, %q, which make %q, %v", topic, p.fleet, p.device, again, err)
			}
			if strings.ContainsAny(topic, "+#$ \x00") || strings.Count(topic, "/") != 4 {
				t.Fatalf("accepted topic %q has a wildcard, system prefix or extra level", topic)
			}
		}
	})
}

// FuzzState: ParseState accepts exactly what Marshal writes (what it
// accepts marshals back to the same bytes), and whatever State Marshal
// accepts parses back to itself.
func FuzzState(f *testing.F) {
	for _, s := range []State{
		{Kind: StateOnline}, {Kind: StateOffline}, {Kind: StateTunnelUp, Session: "s-1"},
		{Kind: StateTunnelDown, Session: "0f2c.A_9", Reason: "idle_timeout"}, {Kind: StateRejected, Reason: ReasonReplayed},
		{Kind: StateWaitingConsent, Session: "ses_1"}, {Kind: StateTunnelUp, Session: "s 1"},
	} {
		b, _ := s.Marshal()
		f.Add(b, s.Kind, s.Session, s.Reason)
	}
	f.Add([]byte("tunnel_down s1  x"), "rejected", "", "a/b")
	f.Fuzz(func(t *testing.T, msg []byte, kind, session, reason string) {
		if s, err := ParseState(msg); err == nil {
			if b, err := s.Marshal(); err != nil || !bytes.Equal(b, msg) {
				t.Fatalf("ParseState(%q) = %+v, which marshals to %q, %v", msg, s, b, err)
			}
		} else if s != (State{}) {
			t.Fatalf("ParseState(%q) failed (%v) but returned %+v", msg, err, s)
		}
		s := State{Kind: kind, Session: session, Reason: reason}
		b, err := s.Marshal()
		if err != nil {
			return
		}
		if got, err := ParseState(b); err != nil || got != s {
			t.Fatalf("%+v marshals to %q, which parses as %+v, %v", s, b, got, err)
		}
	})
}

// FuzzDeviceRequest feeds arbitrary requests and credentials to
// CheckDeviceRequest: it must never panic, and whatever it accepts must be
// exactly a credential the device's key signed for that very method and
// request URI (the fuzzer cannot sign, so only the seeds' can pass), within
// the skew of now.
func FuzzDeviceRequest(f *testing.F) {
	priv := testKey(4)
	pub := priv.Public().(ed25519.PublicKey)
	signed := map[string]string{} // credential -> "METHOD URI"
	add := func(method, uri string, at time.Time, skew int64) {
		// A nonce of its own per seed, the same in every fuzzing process.
		nonce := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%016d", len(signed))))
		cred := signDeviceRequest(priv, testFleet, testDevice, method, uri, BodyDigest([]byte(uri)), at, nonce)
		signed[cred] = method + " " + uri
		f.Add(method, uri, cred, skew)
	}
	add("GET", "/api/v1/device", testNow, 0)
	add("PUT", "/api/v1/device/sessions/s1/files/a.cast?offset=5", testNow.Add(-time.Minute), 30)
	add("POST", "/api/v1/device/requests", testNow, int64(DeviceRequestSkew/time.Second)+1)
	f.Add("GET", "/api/v1/device", DevicePassword(priv, testFleet, testDevice, testNow), int64(0))
	f.Add("GET", "/x\n", "r1.1.AAAAAAAAAAAAAAAAAAAAAA."+strings.Repeat("A", 86), int64(0))
	f.Fuzz(func(t *testing.T, method, uri, cred string, skew int64) {
		now := testNow.Add(time.Duration(skew%(1<<20)) * time.Second)
		req, err := CheckDeviceRequest(pub, testFleet, testDevice, method, uri, BodyDigest([]byte(uri)), cred, now)
		if err != nil {
			if !errors.Is(err, ErrDeviceRequest) {
				t.Fatalf("error %v does not wrap ErrDeviceRequest", err)
			}
			return
		}
		if signed[cred] != method+" "+uri {
			t.Fatalf("accepted %q for %s %s, which the device never signed for it", cred, method, uri)
		}
		if d := now.Sub(req.At).Abs(); d > DeviceRequestSkew || !validNonce(req.Nonce) {
			t.Fatalf("accepted a credential %v away from now, nonce %q", d, req.Nonce)
		}
	})
}
