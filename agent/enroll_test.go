package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/apitype"
)

func enrollOpts(f *agenttest.API, dir, name string) EnrollOptions {
	return EnrollOptions{Server: f.URL, Token: "phe_secret", Name: name, StateDir: dir, Fingerprint: f.Fingerprint()}
}

func lastRequest(f *agenttest.API) apitype.EnrollRequest {
	r := f.Requests()
	return r[len(r)-1]
}

// stateDir is a state directory that does not exist yet.
func stateDir(t *testing.T) string { return filepath.Join(t.TempDir(), "state") }

func TestEnroll(t *testing.T) {
	f := agenttest.NewAPI(t)
	dir := stateDir(t)
	st, err := Enroll(context.Background(), enrollOpts(f, dir, "kitchen-amp"))
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	req := lastRequest(f)
	if req.Token != "phe_secret" || req.Name != "kitchen-amp" {
		t.Errorf("request = %+v; want token phe_secret, name kitchen-amp", req)
	}
	if want := agenttest.KeyLine(st.Key.PublicKey()); req.PublicKey != want {
		t.Errorf("sent public key %q; want the device key %q", req.PublicKey, want)
	}
	for _, tt := range []struct {
		name string
		mode os.FileMode
	}{
		{"", 0o700},
		{agentstate.DeviceKeyFile, 0o600},
		{agentstate.HostCertFile, 0o644},
		{agentstate.EnrollmentFile, 0o644},
	} {
		fi, err := os.Stat(filepath.Join(dir, tt.name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tt.mode {
			t.Errorf("%s/%s mode = %v; want %v", dir, tt.name, fi.Mode().Perm(), tt.mode)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("state dir holds %d files; want 3 (no temporary files left)", len(entries))
	}

	loaded, err := agentstate.Load(dir)
	if err != nil {
		t.Fatalf("agentstate.Load: %v", err)
	}
	want := agentstate.Enrollment{
		Server: f.URL, Fingerprint: f.Fingerprint(), Fleet: "lab", DeviceID: "dev_0001", Name: "kitchen-amp",
		ControlKey: f.Keys.ControlPublicKey(), UserCA: f.Keys.UserCAPublicKey(), HostCA: f.Keys.HostCAPublicKey(),
		TLSFingerprint: f.Fingerprint(), BrokerURL: "mqtts://broker.example.com:8883", RelayAddr: "relay.example.com:2222",
		EnrolledAt: st.Enrollment.EnrolledAt,
	}
	if loaded.Enrollment != want || st.Enrollment != want {
		t.Errorf("enrollment = %+v\nwant %+v", loaded.Enrollment, want)
	}
	if time.Since(want.EnrolledAt) > time.Minute {
		t.Errorf("EnrolledAt = %v; want now", want.EnrolledAt)
	}
	if !bytes.Equal(loaded.Key.PublicKey().Marshal(), st.Key.PublicKey().Marshal()) ||
		!bytes.Equal(loaded.HostCert.Marshal(), st.HostCert.Marshal()) {
		t.Error("agentstate.Load read another key or certificate than Enroll saved")
	}
	if !strings.Contains(loaded.HostCert.KeyId, "lab/kitchen-amp") {
		t.Errorf("host certificate KeyId = %q", loaded.HostCert.KeyId)
	}
}

func TestEnrollRefusesWhenEnrolled(t *testing.T) {
	f := agenttest.NewAPI(t)
	dir := stateDir(t)
	if _, err := Enroll(context.Background(), enrollOpts(f, dir, "dev1")); err != nil {
		t.Fatal(err)
	}
	keyBefore, _ := os.ReadFile(filepath.Join(dir, agentstate.DeviceKeyFile))
	_, err := Enroll(context.Background(), enrollOpts(f, dir, "dev2"))
	want := "this device is already enrolled as dev1 in fleet lab (state in " + dir + "); remove " + dir + " to enroll again"
	if !errors.Is(err, ErrAlreadyEnrolled) || err.Error() != want {
		t.Fatalf("second Enroll = %v; want %q", err, want)
	}
	if len(f.Requests()) != 1 {
		t.Errorf("server was asked %d times; want once", len(f.Requests()))
	}
	if keyAfter, _ := os.ReadFile(filepath.Join(dir, agentstate.DeviceKeyFile)); !bytes.Equal(keyBefore, keyAfter) {
		t.Error("the device key changed")
	}
}

func TestEnrollStateDirRules(t *testing.T) {
	f := agenttest.NewAPI(t)
	t.Run("open to others", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o777, 0o770, 0o702, 0o720} {
			dir := t.TempDir()
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			_, err := Enroll(context.Background(), enrollOpts(f, dir, "dev1"))
			if err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
				t.Errorf("Enroll into a %v dir = %v; want an error saying chmod 700 %s", mode, err, dir)
			}
		}
	})
	t.Run("readable by others is fine", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Enroll(context.Background(), enrollOpts(f, dir, "dev-755")); err != nil {
			t.Errorf("Enroll into a 0755 dir: %v", err)
		}
	})
	t.Run("owned by another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a directory away")
		}
		dir := t.TempDir()
		if err := os.Chown(dir, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		_, err := Enroll(context.Background(), enrollOpts(f, dir, "dev1"))
		if err == nil || !strings.Contains(err.Error(), "belongs to user id 4242") {
			t.Errorf("Enroll into another user's dir = %v; want an error naming its owner", err)
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Enroll(context.Background(), enrollOpts(f, path, "dev1")); err == nil {
			t.Error("Enroll into a file succeeded")
		}
	})
	t.Run("loose device key", func(t *testing.T) {
		dir := stateDir(t)
		f.Fail(http.StatusGone, &apitype.ErrorDetail{Code: apitype.CodeTokenExpired, Message: "expired"})
		Enroll(context.Background(), enrollOpts(f, dir, "dev1")) // leaves a key
		f.Fail(0, nil)
		key := filepath.Join(dir, agentstate.DeviceKeyFile)
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Enroll(context.Background(), enrollOpts(f, dir, "dev1"))
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+key) {
			t.Errorf("Enroll with a 0644 key = %v; want an error saying chmod 600 %s", err, key)
		}
	})
	if len(f.Requests()) != 2 {
		t.Errorf("server was asked %d times; want twice (only the 0755 case and the refused token reach it)", len(f.Requests()))
	}
}

func TestEnrollReusesKeyAfterFailure(t *testing.T) {
	f := agenttest.NewAPI(t)
	dir := stateDir(t)
	f.Fail(http.StatusConflict, &apitype.ErrorDetail{Code: apitype.CodeConflict, Message: "taken"})
	if _, err := Enroll(context.Background(), enrollOpts(f, dir, "dev1")); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("Enroll = %v; want ErrNameTaken", err)
	}
	first := lastRequest(f).PublicKey
	if _, err := os.Stat(filepath.Join(dir, agentstate.EnrollmentFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed enrollment left a record (%v)", err)
	}
	f.Fail(0, nil)
	st, err := Enroll(context.Background(), enrollOpts(f, dir, "dev2"))
	if err != nil {
		t.Fatal(err)
	}
	if lastRequest(f).PublicKey != first || agenttest.KeyLine(st.Key.PublicKey()) != first {
		t.Error("the retry made a new key instead of using the one already made")
	}
}

func TestEnrollValidatesLocally(t *testing.T) {
	f := agenttest.NewAPI(t)
	for _, tt := range []struct {
		name   string
		edit   func(*EnrollOptions)
		errHas string
	}{
		{"no name", func(o *EnrollOptions) { o.Name = "" }, "--name"},
		{"upper case", func(o *EnrollOptions) { o.Name = "Kitchen" }, "lower-case"},
		{"dot", func(o *EnrollOptions) { o.Name = "dev1.other" }, "lower-case"},
		{"space", func(o *EnrollOptions) { o.Name = "dev 1" }, "lower-case"},
		{"too long", func(o *EnrollOptions) { o.Name = strings.Repeat("a", 64) }, "at most 63"},
		{"no token", func(o *EnrollOptions) { o.Token = " " }, "--token"},
		{"no server", func(o *EnrollOptions) { o.Server = "" }, "--server"},
		{"plain http", func(o *EnrollOptions) { o.Server = strings.Replace(o.Server, "https:", "http:", 1) }, "https://"},
		{"not a URL", func(o *EnrollOptions) { o.Server = "porthole.example.com" }, "https://"},
		{"bad fingerprint", func(o *EnrollOptions) { o.Fingerprint = "sha256:abc" }, "sha256:<64 hex digits>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := stateDir(t)
			opts := enrollOpts(f, dir, "dev1")
			tt.edit(&opts)
			_, err := Enroll(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Enroll = %v; want an error mentioning %q", err, tt.errHas)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Error("the state directory was created for an enrollment that could not start")
			}
		})
	}
	if len(f.Requests()) != 0 {
		t.Errorf("server was asked %d times; want none", len(f.Requests()))
	}
	if CheckName(strings.Repeat("a", 63)) != nil || CheckName("field-cam-7") != nil {
		t.Error("CheckName refuses a valid name")
	}
}

func TestEnrollPinning(t *testing.T) {
	f := agenttest.NewAPI(t)
	t.Run("right pin", func(t *testing.T) {
		if _, err := Enroll(context.Background(), enrollOpts(f, stateDir(t), "pinned")); err != nil {
			t.Errorf("Enroll with the right pin: %v", err)
		}
	})
	t.Run("wrong pin", func(t *testing.T) {
		opts := enrollOpts(f, stateDir(t), "dev1")
		opts.Fingerprint = "sha256:" + strings.Repeat("ab", 32)
		_, err := Enroll(context.Background(), opts)
		if !errors.Is(err, ErrServerUntrusted) {
			t.Fatalf("Enroll with a wrong pin = %v; want ErrServerUntrusted", err)
		}
		for _, want := range []string{opts.Fingerprint, f.Fingerprint()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	})
	t.Run("no pin, self-signed", func(t *testing.T) {
		opts := enrollOpts(f, stateDir(t), "dev1")
		opts.Fingerprint = ""
		_, err := Enroll(context.Background(), opts)
		if !errors.Is(err, ErrServerUntrusted) {
			t.Fatalf("Enroll without a pin = %v; want ErrServerUntrusted", err)
		}
		for _, want := range []string{"--fingerprint sha256:", "porthole enroll-token create", "portholed dev"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		// The server's own fingerprint is not offered: a man in the
		// middle would be offering his.
		if strings.Contains(err.Error(), f.Fingerprint()) {
			t.Errorf("error %q suggests the unverified fingerprint", err)
		}
	})
	if len(f.Requests()) != 1 {
		t.Errorf("server saw %d enrollments; want only the pinned one", len(f.Requests()))
	}
}

func TestEnrollExplainsServerErrors(t *testing.T) {
	for _, tt := range []struct {
		code   string
		status int
		kind   error
		want   string
	}{
		{apitype.CodeConflict, http.StatusConflict, ErrNameTaken,
			"a device named dev1 is already enrolled in this fleet; pick another --name, or ask a fleet owner to delete the old one (porthole devices rm dev1)"},
		{apitype.CodeTokenExpired, http.StatusGone, ErrTokenRejected, "the enrollment token has expired; ask a fleet owner for a new one (porthole enroll-token create)"},
		{apitype.CodeTokenUsedUp, http.StatusGone, ErrTokenRejected, "used as many times as it allows; ask a fleet owner for a new one"},
		{apitype.CodeNotFound, http.StatusNotFound, ErrTokenRejected, "does not know this enrollment token"},
		{apitype.CodeUnauthenticated, http.StatusUnauthorized, ErrTokenRejected, "does not know this enrollment token"},
		{apitype.CodeRateLimited, http.StatusTooManyRequests, nil, "wait a minute"},
		{apitype.CodeBadRequest, http.StatusBadRequest, nil, "the server refused the enrollment: public_key is not an ed25519 key"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			f := agenttest.NewAPI(t)
			f.Fail(tt.status, &apitype.ErrorDetail{Code: tt.code, Message: "public_key is not an ed25519 key"})
			dir := stateDir(t)
			_, err := Enroll(context.Background(), enrollOpts(f, dir, "dev1"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Enroll = %v; want %q", err, tt.want)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.kind)
			}
			if _, err := os.Stat(filepath.Join(dir, agentstate.EnrollmentFile)); err == nil {
				t.Error("a refused enrollment left a record")
			}
		})
	}
}

// TestEnrollChecksAnswer: a server answer that does not hold together is
// refused and nothing is saved.
func TestEnrollChecksAnswer(t *testing.T) {
	other := agenttest.NewKeys(t)
	strangerPub, _, _ := ed25519.GenerateKey(rand.Reader)
	stranger, _ := ssh.NewPublicKey(strangerPub)
	// resign replaces the host certificate with one made by sign for the
	// device key taken from the original.
	resign := func(sign func(key ssh.PublicKey) (*ssh.Certificate, error)) func(*apitype.EnrollResponse) {
		return func(r *apitype.EnrollResponse) {
			pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(r.HostCert))
			cert, err := sign(pub.(*ssh.Certificate).Key)
			if err != nil {
				panic(err)
			}
			r.HostCert = agenttest.KeyLine(cert)
		}
	}
	for _, tt := range []struct {
		name   string
		tamper func(f *agenttest.API) func(*apitype.EnrollResponse)
		errHas string
	}{
		{"certificate for another key", func(f *agenttest.API) func(*apitype.EnrollResponse) {
			return resign(func(ssh.PublicKey) (*ssh.Certificate, error) {
				return f.Keys.SignHostCert(stranger, "lab", "dev1", time.Now(), time.Hour)
			})
		}, "another key"},
		{"signed by another CA", func(*agenttest.API) func(*apitype.EnrollResponse) {
			return resign(func(k ssh.PublicKey) (*ssh.Certificate, error) {
				return other.SignHostCert(k, "lab", "dev1", time.Now(), time.Hour)
			})
		}, "host CA"},
		{"for another device", func(f *agenttest.API) func(*apitype.EnrollResponse) {
			return resign(func(k ssh.PublicKey) (*ssh.Certificate, error) {
				return f.Keys.SignHostCert(k, "lab", "dev2", time.Now(), time.Hour)
			})
		}, "principal"},
		{"for another fleet", func(f *agenttest.API) func(*apitype.EnrollResponse) {
			return resign(func(k ssh.PublicKey) (*ssh.Certificate, error) {
				return f.Keys.SignHostCert(k, "shop", "dev1", time.Now(), time.Hour)
			})
		}, "principal"},
		{"expired", func(f *agenttest.API) func(*apitype.EnrollResponse) {
			return resign(func(k ssh.PublicKey) (*ssh.Certificate, error) {
				return f.Keys.SignHostCert(k, "lab", "dev1", time.Now().Add(-2*time.Hour), time.Hour)
			})
		}, "this device's clock says"},
		{"not a certificate", func(*agenttest.API) func(*apitype.EnrollResponse) {
			return func(r *apitype.EnrollResponse) { r.HostCert = agenttest.KeyLine(stranger) }
		}, "plain key"},
		{"garbage certificate", func(*agenttest.API) func(*apitype.EnrollResponse) {
			return func(r *apitype.EnrollResponse) { r.HostCert = "ssh-ed25519-cert-v01@openssh.com AAAA" }
		}, "cannot be parsed"},
		{"other name", func(*agenttest.API) func(*apitype.EnrollResponse) {
			return func(r *apitype.EnrollResponse) { r.Device.Name = "dev2" }
		}, `the server enrolled "dev2"`},
		{"no fleet", func(*agenttest.API) func(*apitype.EnrollResponse) {
			return func(r *apitype.EnrollResponse) { r.Device.Fleet = "" }
		}, "no valid fleet"},
		{"bad control key", func(*agenttest.API) func(*apitype.EnrollResponse) {
			return func(r *apitype.EnrollResponse) { r.ControlKey = "" }
		}, "control key"},
		{"user CA not ed25519", func(*agenttest.API) func(*apitype.EnrollResponse) {
			return func(r *apitype.EnrollResponse) { r.UserCA = agenttest.KeyLine(mustCert(r.HostCert)) }
		}, "user CA is a ssh-ed25519-cert"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := agenttest.NewAPI(t)
			f.Tamper(tt.tamper(f))
			dir := stateDir(t)
			_, err := Enroll(context.Background(), enrollOpts(f, dir, "dev1"))
			if err == nil || !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), "nothing was saved") {
				t.Fatalf("Enroll = %v; want an error mentioning %q", err, tt.errHas)
			}
			for _, name := range []string{agentstate.EnrollmentFile, agentstate.HostCertFile} {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					t.Errorf("%s was saved", name)
				}
			}
		})
	}
}

func mustCert(line string) ssh.PublicKey {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		panic(err)
	}
	return pub
}

func TestLoadState(t *testing.T) {
	f := agenttest.NewAPI(t)
	enrolled := func(t *testing.T) string {
		dir := stateDir(t)
		if _, err := Enroll(context.Background(), enrollOpts(f, dir, "dev1")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("not enrolled", func(t *testing.T) {
		if _, err := agentstate.Load(t.TempDir()); !errors.Is(err, agentstate.ErrNotEnrolled) {
			t.Errorf("agentstate.Load of an empty dir = %v; want agentstate.ErrNotEnrolled", err)
		}
	})
	t.Run("missing dir", func(t *testing.T) {
		if _, err := agentstate.Load(stateDir(t)); err == nil || !strings.Contains(err.Error(), "porthole-agent enroll") {
			t.Errorf("agentstate.Load of a missing dir = %v; want a hint to enroll", err)
		}
	})
	t.Run("dir opened to others", func(t *testing.T) {
		dir := enrolled(t)
		os.Chmod(dir, 0o777)
		if _, err := agentstate.Load(dir); err == nil || !strings.Contains(err.Error(), "chmod 700") {
			t.Errorf("agentstate.Load = %v; want chmod 700", err)
		}
	})
	t.Run("key opened to others", func(t *testing.T) {
		dir := enrolled(t)
		os.Chmod(filepath.Join(dir, agentstate.DeviceKeyFile), 0o640)
		if _, err := agentstate.Load(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("agentstate.Load = %v; want chmod 600", err)
		}
	})
	t.Run("certificate swapped", func(t *testing.T) {
		// Another enrolled device's certificate, valid and from the same
		// CA, must not be taken for this one's.
		dir, otherDir := enrolled(t), enrolled(t)
		data, _ := os.ReadFile(filepath.Join(otherDir, agentstate.HostCertFile))
		os.WriteFile(filepath.Join(dir, agentstate.HostCertFile), data, 0o644)
		if _, err := agentstate.Load(dir); err == nil || !strings.Contains(err.Error(), "another key") {
			t.Errorf("agentstate.Load = %v; want a refusal of the other device's certificate", err)
		}
	})
	t.Run("host CA swapped", func(t *testing.T) {
		dir := enrolled(t)
		path := filepath.Join(dir, agentstate.EnrollmentFile)
		var enr agentstate.Enrollment
		data, _ := os.ReadFile(path)
		json.Unmarshal(data, &enr)
		enr.HostCA = agenttest.NewKeys(t).HostCAPublicKey()
		data, _ = json.Marshal(enr)
		os.WriteFile(path, data, 0o644)
		if _, err := agentstate.Load(dir); err == nil || !strings.Contains(err.Error(), "host CA") {
			t.Errorf("agentstate.Load = %v; want a refusal of the certificate", err)
		}
	})
	t.Run("damaged record", func(t *testing.T) {
		dir := enrolled(t)
		os.WriteFile(filepath.Join(dir, agentstate.EnrollmentFile), []byte("{"), 0o644)
		if _, err := agentstate.Load(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("agentstate.Load = %v; want damaged", err)
		}
	})
}
