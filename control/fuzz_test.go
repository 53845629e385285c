package control

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzVerify feeds arbitrary envelopes to Verify. It must never panic, and
// whatever it accepts must carry exactly the payload bytes of one of the
// seed commands signed below: the fuzzer cannot sign, so anything else
// getting through is a forgery. Run it for a while with
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
	for i, c := range []Command{openCmd(), openCmd(), openCmd()} {
		switch i {
		case 1:
			c.Type, c.Relay, c.Ports = TypeClose, "", nil
		case 2:
			c.Device = "dev2"
		}
		c.Nonce = "fuzz-seed-nonce-000" + string(rune('0'+i))
		add(c)
	}
	f.Add(mustSign(f, testKey(2), openCmd()))
	f.Add(signRaw(key, []byte(`{"v":2}`)))
	f.Add([]byte(`{"payload":"","sig":""}`))
	f.Add([]byte(`{"payload":"e30=","sig":"AAAA","x":1}`))

	f.Fuzz(func(t *testing.T, env []byte) {
		v := newTestVerifier(t, key, &memNonces{})
		cmd, err := v.Verify(env, testNow)
		if err != nil {
			if cmd != nil {
				t.Fatalf("Verify returned a command with error %v", err)
			}
			if RejectReason(err) == ReasonInternal {
				t.Fatalf("Verify failed without a reject reason: %v", err)
			}
			return
		}
		payload, _, perr := openEnvelope(env)
		if perr != nil || !signed[string(payload)] {
			t.Fatalf("Verify accepted an envelope with unsigned payload %q", payload)
		}
		var again Command
		json.Unmarshal(payload, &again)
		a, _ := json.Marshal(again)
		b, _ := json.Marshal(cmd)
		if !bytes.Equal(a, b) || cmd.Device != testDevice || cmd.Fleet != testFleet {
			t.Fatalf("accepted command %s is not its signed payload %s", b, a)
		}
	})
}
