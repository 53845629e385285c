package agentcmd

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole/porthole/agent/internal/agenttest"
)

// run executes porthole-agent with args and env, returning its stdout,
// stderr and error.
func run(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = Run(context.Background(), args, IO{
		In: strings.NewReader(""), Out: &out, Err: &errOut,
		Getenv: func(k string) string { return env[k] },
	})
	return out.String(), errOut.String(), err
}

func TestEnroll(t *testing.T) {
	api := agenttest.NewAPI(t)
	wrongPin := "sha256:" + strings.Repeat("00", 32)
	for _, tt := range []struct {
		name string
		env  map[string]string
		pin  []string // --fingerprint flag, if any
	}{
		{"flag", nil, []string{"--fingerprint", api.Fingerprint()}},
		{"environment", map[string]string{"PORTHOLE_FINGERPRINT": api.Fingerprint()}, nil},
		{"flag wins over environment", map[string]string{"PORTHOLE_FINGERPRINT": wrongPin}, []string{"--fingerprint", api.Fingerprint()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			args := append([]string{"enroll", "--server", api.URL, "--token", "phe_x", "--name", "dev1", "--state", dir}, tt.pin...)
			stdout, stderr, err := run(t, tt.env, args...)
			if err != nil {
				t.Fatalf("enroll: %v", err)
			}
			want := "enrolled dev1 in fleet lab (device id dev_0001); state saved in " + dir + "\n"
			if stdout != want || stderr != "" {
				t.Errorf("stdout = %q, stderr = %q; want %q and nothing", stdout, stderr, want)
			}
		})
	}
}

func TestEnrollErrors(t *testing.T) {
	api := agenttest.NewAPI(t)
	for _, tt := range []struct {
		name   string
		args   []string
		errHas string
	}{
		{"bad name", []string{"--name", "Kitchen_Amp", "--fingerprint", api.Fingerprint()}, `the device name "Kitchen_Amp" may hold only lower-case letters`},
		{"no pin", []string{"--name", "dev1"}, "--fingerprint sha256:"},
		{"stray argument", []string{"--name", "dev1", "extra"}, "unknown command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"enroll", "--server", api.URL, "--token", "phe_x", "--state", filepath.Join(t.TempDir(), "s")}, tt.args...)
			stdout, _, err := run(t, nil, args...)
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("enroll %v = %v; want an error containing %q", tt.args, err, tt.errHas)
			}
			if stdout != "" {
				t.Errorf("stdout = %q; want nothing on failure", stdout)
			}
		})
	}
	if n := len(api.Requests()); n != 0 {
		t.Errorf("server got %d enrollments; want none", n)
	}
}

func TestVerbose(t *testing.T) {
	api := agenttest.NewAPI(t)
	_, stderr, err := run(t, nil, "enroll", "-v", "--server", api.URL, "--token", "phe_x", "--name", "dev1",
		"--state", filepath.Join(t.TempDir(), "s"), "--fingerprint", api.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "enrolled") || strings.Contains(stderr, "phe_x") {
		t.Errorf("verbose stderr = %q; want progress lines without the token", stderr)
	}
}

func TestVersionHelpCompletion(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"version"}, "porthole-agent dev ("},
		{[]string{"--help"}, "enroll      Enroll this device"},
		{[]string{"enroll", "--help"}, "porthole enroll-token create"},
		{[]string{"completion", "bash"}, "bash completion"},
	} {
		stdout, _, err := run(t, nil, tt.args...)
		if err != nil || !strings.Contains(stdout, tt.want) {
			t.Errorf("porthole-agent %v = %v, output:\n%s\nwant it to contain %q", tt.args, err, stdout, tt.want)
		}
	}
}
