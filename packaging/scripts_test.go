package packaging_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestScriptArguments runs each maintainer script as rpm calls it (%post 1
// on install, 2 on upgrade; %preun and %postun 0 on erase, 1 on upgrade)
// and with dpkg's rarer arguments, with systemd seeming to run, and checks
// the systemctl calls: the dpkg path is TestAgentPackage's, this one the
// path no rpm on this machine takes. systemd-sysusers and install are
// stand-ins here, so the system is not changed.
func TestScriptArguments(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a mount namespace where systemd seems to run needs root (CI runs as root)")
	}
	for _, tt := range []struct {
		script string
		args   []string
		want   []string
	}{
		{"porthole-agent.postinst", []string{"1"}, []string{"daemon-reload"}},
		{"porthole-agent.postinst", []string{"2"}, []string{"daemon-reload", "try-restart porthole-agent.service"}},
		{"porthole-agent.prerm", []string{"0"}, []string{"stop porthole-agent.service"}},
		{"porthole-agent.prerm", []string{"1"}, nil},
		{"porthole-agent.postrm", []string{"0"}, []string{"daemon-reload"}},
		{"porthole-agent.postrm", []string{"1"}, nil},
		{"porthole-agent.postinst", []string{"abort-upgrade", "0.1"}, nil},
		{"porthole-agent.prerm", []string{"upgrade", "0.2"}, nil},
		{"porthole-agent.prerm", []string{"failed-upgrade", "0.2"}, nil},
		{"porthole-agent.postrm", []string{"upgrade", "0.2"}, nil},
		{"porthole-agent.postrm", []string{"abort-install"}, nil},
		{"portholed.postinst", []string{"1"}, []string{"daemon-reload"}},
		{"portholed.postinst", []string{"2"}, []string{"daemon-reload", "try-restart portholed.service"}},
		{"portholed.prerm", []string{"0"}, []string{"stop portholed.service"}},
		{"portholed.prerm", []string{"1"}, nil},
		{"portholed.postrm", []string{"0"}, []string{"daemon-reload"}},
		{"portholed.postrm", []string{"1"}, nil},
		{"portholed.prerm", []string{"upgrade", "0.2"}, nil},
	} {
		script, _ := filepath.Abs(filepath.Join("scripts", tt.script))
		argv, env, calls := under(t, fakeSystemd, append([]string{"sh", script}, tt.args...),
			[2]string{"systemd-sysusers", "exit 0"}, [2]string{"install", "exit 0"})
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s %v: %v\n%s", tt.script, tt.args, err, out)
			continue
		}
		checkCalls(t, tt.script+" "+fmt.Sprint(tt.args), calls(), tt.want...)
	}
}
