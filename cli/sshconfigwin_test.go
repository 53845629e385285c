package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestSSHConfigBlockWindows reads the block written for Windows' ssh.exe
// the way ssh.exe does: ProxyCommand %-expanded and split as a Windows
// command line (no shell), IdentityAgent and UserKnownHostsFile split into
// words by ssh_config's rules and %-expanded. The proxy must get the
// program, --server, the pipe and the host as separate arguments, and the
// pipe ssh opens must be the one the proxy serves.
func TestSSHConfigBlockWindows(t *testing.T) {
	const (
		exe        = `C:\Program Files\Porthole 100%\porthole.exe`
		dir        = `C:\Users\Ann O'Neil\AppData\Local\porthole`
		knownHosts = dir + `\known_hosts`
		server     = "https://p.example.com:8443"
		host       = "dev1.acme.porthole"
	)
	block, err := sshConfigBlock(sshConfigParams{windows: true, exe: exe, server: server, serverFlag: true,
		agentPipe: agentPipePrefix(dir), knownHosts: knownHosts})
	if err != nil {
		t.Fatal(err)
	}
	pipe := agentSocketFor("windows", dir, host)
	lines := map[string]string{}
	for _, l := range strings.Split(block, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), " "); ok && !strings.HasPrefix(k, "#") {
			lines[k] = v
		}
	}
	proxy := splitWindowsCommandLine(percentExpand(lines["ProxyCommand"], host))
	if want := []string{exe, "--server", server, "proxy", "--agent-socket", pipe, host}; !slices.Equal(proxy, want) {
		t.Errorf("ssh.exe runs ProxyCommand as %q; want %q\n%s", proxy, want, block)
	}
	if !strings.HasPrefix(lines["ProxyCommand"], `"`) {
		t.Errorf("ProxyCommand %q does not start with the quoted program", lines["ProxyCommand"])
	}
	for key, want := range map[string]string{"IdentityAgent": pipe, "UserKnownHostsFile": strings.ReplaceAll(knownHosts, `\`, "/")} {
		words := splitSSHConfigWords(lines[key])
		if len(words) != 1 || percentExpand(words[0], host) != want {
			t.Errorf("ssh.exe reads %s %q as %q; want %q", key, lines[key], words, want)
		}
	}
	if strings.Contains(lines["IdentityAgent"]+lines["UserKnownHostsFile"], `\`) {
		t.Errorf("a backslash in IdentityAgent or UserKnownHostsFile, which OpenSSH releases read differently:\n%s", block)
	}
}

func TestWindowsArg(t *testing.T) {
	for _, s := range []string{
		"plain", "https://p.example.com:8443", "with space", `a"b`, `a\"b`, `a\\"b`, `trailing\`,
		`with space\`, `with space\\`, `\\server\share\x`, "", `"`, "tab\there",
	} {
		got := splitWindowsCommandLine("prog " + windowsArg(s))
		if len(got) != 2 || got[1] != s {
			t.Errorf("windowsArg(%q) = %s, which Windows splits into %q", s, windowsArg(s), got)
		}
	}
	if got := windowsArg("//./pipe/porthole-ab-%n"); got != "//./pipe/porthole-ab-%n" {
		t.Errorf("windowsArg quoted %q, which needs no quotes", got)
	}
}

func TestSSHConfigHome(t *testing.T) {
	env := map[string]string{"HOME": "/c/Users/ann/git-bash-home", "USERPROFILE": `C:\Users\ann`}
	getenv := func(k string) string { return env[k] }
	if got, err := sshConfigHome("windows", getenv); err != nil || got != `C:\Users\ann` {
		t.Errorf("sshConfigHome(windows) = %q, %v; want USERPROFILE, which ssh.exe uses whatever HOME says", got, err)
	}
	if got, err := sshConfigHome("darwin", getenv); err != nil || got != env["HOME"] {
		t.Errorf("sshConfigHome(darwin) = %q, %v; want HOME", got, err)
	}
	none := func(string) string { return "" }
	if _, err := sshConfigHome("windows", none); err == nil || !strings.Contains(err.Error(), "USERPROFILE") {
		t.Errorf("sshConfigHome(windows) without USERPROFILE = %v; want an error naming it", err)
	}
	if _, err := sshConfigHome("linux", none); err == nil || !strings.Contains(err.Error(), "HOME") {
		t.Errorf("sshConfigHome(linux) without HOME = %v; want an error naming it", err)
	}
}

func TestNoOpenSSH(t *testing.T) {
	if got := noOpenSSH("windows"); !strings.Contains(got, "ssh.exe") || !strings.Contains(got, "Optional features") {
		t.Errorf("noOpenSSH(windows) = %q; want it to say where Windows installs OpenSSH's client", got)
	}
}

// percentExpand expands ssh's %n (the host as given) and %%.
func percentExpand(s, host string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n':
				b.WriteString(host)
			case '%':
				b.WriteByte('%')
			default:
				b.WriteByte('%')
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// splitWindowsCommandLine splits a command line as the C runtime (and Go)
// on Windows do: spaces and tabs separate arguments outside quotes; 2n
// backslashes before a quote are n and the quote opens or closes, 2n+1 are
// n and a quote; other backslashes are themselves.
func splitWindowsCommandLine(s string) []string {
	var args []string
	var arg []byte
	inArg, quoted := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			n := 0
			for i < len(s) && s[i] == '\\' {
				n++
				i++
			}
			if i < len(s) && s[i] == '"' {
				arg = append(arg, strings.Repeat(`\`, n/2)...)
				if n%2 == 1 {
					arg = append(arg, '"')
				} else {
					quoted = !quoted
				}
			} else {
				arg = append(arg, strings.Repeat(`\`, n)...)
				i--
			}
			inArg = true
		case c == '"':
			quoted = !quoted
			inArg = true
		case (c == ' ' || c == '\t') && !quoted:
			if inArg {
				args = append(args, string(arg))
				arg, inArg = nil, false
			}
		default:
			arg = append(arg, c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, string(arg))
	}
	return args
}

// splitSSHConfigWords splits an ssh_config value into words as OpenSSH
// 8.7 and later do (argv_split): quotes group, and a backslash escapes a
// quote, a backslash, or outside quotes a space.
func splitSSHConfigWords(s string) []string {
	var words []string
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			continue
		}
		var w []byte
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')) {
				i++
				w = append(w, s[i])
				continue
			}
			if quote == 0 && (c == ' ' || c == '\t') {
				break
			}
			if quote == 0 && (c == '"' || c == '\'') {
				quote = c
				continue
			}
			if quote != 0 && c == quote {
				quote = 0
				continue
			}
			w = append(w, c)
		}
		words = append(words, string(w))
	}
	return words
}
