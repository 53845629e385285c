package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/atomicfile"
)

// The markers around the block `porthole ssh-config --write` keeps in
// ~/.ssh/config, so that running it again replaces the block.
const (
	sshConfigBegin = "# >>> porthole ssh-config >>>"
	sshConfigEnd   = "# <<< porthole ssh-config <<<"
)

const knownHostsFile = "known_hosts"

func newSSHConfig(a *app) *cobra.Command {
	var write bool
	cmd := &cobra.Command{
		Use:   "ssh-config [--write]",
		Short: "Set up ssh, scp, sftp and rsync to reach devices as DEVICE.porthole",
		Long: `Set up stock OpenSSH (ssh, scp, sftp, rsync, and everything built on them) to
reach devices as DEVICE.porthole, or DEVICE.FLEET.porthole when several of your
fleets have a device of that name.

It writes the server's host CA to a known_hosts file in porthole's config
directory, so ssh checks each device's host certificate and never asks you to
trust a key, and prints a "Host *.porthole" block for ~/.ssh/config that runs
` + "`porthole proxy`" + ` for those names. With --write, the block is put at the top of
~/.ssh/config (where no "Host *" block can override it), or replaced where an
earlier run put it.

On Windows it is set up for the OpenSSH client that Windows installs (Settings >
System > Optional features > OpenSSH Client), whose ~/.ssh/config is
%USERPROFILE%\.ssh\config; on macOS, for the system's ssh.

Run it again if the server's host CA changes, or when porthole moves.`,
		Example: "  porthole ssh-config --write\n  ssh kitchen-amp.porthole\n  rsync -a logs/ kitchen-amp.acme.porthole:/tmp/logs/",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.sshConfig(cmd.Context(), write)
		},
	}
	cmd.Flags().BoolVar(&write, "write", false, "put the block in ~/.ssh/config instead of printing it")
	return cmd
}

func (a *app) sshConfig(ctx context.Context, write bool) error {
	dir, err := configDir(a.io.Getenv)
	if err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	keys, err := c.CAKeys(ctx)
	if err != nil {
		return err
	}
	hostCA, _, _, _, err := ssh.ParseAuthorizedKey([]byte(keys.HostCA))
	if err != nil {
		return errors.New("the server answered without a valid host CA key: tell your operator")
	}
	windows := runtime.GOOS == "windows"
	if err := makePrivateDir(dir); err != nil {
		return fmt.Errorf("making %s: %w", dir, err)
	}
	if !windows { // the agents' sockets; Windows has pipes instead
		if err := os.MkdirAll(filepath.Join(dir, agentSocketDir), 0o700); err != nil {
			return fmt.Errorf("making %s: %w", filepath.Join(dir, agentSocketDir), err)
		}
	}
	knownHosts := filepath.Join(dir, knownHostsFile)
	line := "@cert-authority *" + hostSuffix + " " + string(ssh.MarshalAuthorizedKey(hostCA))
	if err := atomicfile.WriteFile(knownHosts, []byte(line), 0o644); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the porthole program for ProxyCommand: %w", err)
	}
	if exe, err = filepath.Abs(exe); err != nil {
		return fmt.Errorf("finding the porthole program for ProxyCommand: %w", err)
	}
	p := sshConfigParams{
		windows:    windows,
		exe:        exe,
		server:     a.target.server,
		serverFlag: a.server != "",
		knownHosts: knownHosts,
	}
	if windows {
		p.agentPipe = agentPipePrefix(dir)
	} else {
		p.agentDir = filepath.Join(dir, agentSocketDir)
	}
	block, err := sshConfigBlock(p)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		fmt.Fprintln(a.io.Err, "porthole: note:", noOpenSSH(runtime.GOOS))
	}
	if !write {
		fmt.Fprint(a.io.Out, block)
		fmt.Fprintf(a.io.Err, "wrote the host CA to %s; put the block above at the top of ~/.ssh/config, or run `porthole ssh-config --write`\n", knownHosts)
		return nil
	}
	home, err := sshConfigHome(runtime.GOOS, a.io.Getenv)
	if err != nil {
		return err
	}
	path := filepath.Join(home, ".ssh", "config")
	changed, err := updateSSHConfig(path, block)
	if err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(a.io.Err, "updated %s: `ssh DEVICE.porthole` now goes through porthole (host CA in %s)\n", path, knownHosts)
	} else {
		fmt.Fprintf(a.io.Err, "%s is up to date (host CA in %s)\n", path, knownHosts)
	}
	return nil
}

// sshConfigHome is the home directory whose .ssh/config goos's OpenSSH
// reads: HOME, or on Windows the user's profile (USERPROFILE), which
// Windows' OpenSSH uses whatever HOME says (Git Bash sets one of its own).
func sshConfigHome(goos string, getenv func(string) string) (string, error) {
	if goos == "windows" {
		if h := getenv("USERPROFILE"); h != "" {
			return h, nil
		}
		return "", errors.New(`USERPROFILE is not set, so there is no %USERPROFILE%\.ssh\config to write: print the block without --write and place it yourself`)
	}
	if h := getenv("HOME"); h != "" {
		return h, nil
	}
	return "", errors.New("HOME is not set, so there is no ~/.ssh/config to write: print the block without --write and place it yourself")
}

// noOpenSSH says what to install when goos has no ssh on the PATH.
func noOpenSSH(goos string) string {
	switch goos {
	case "windows":
		return "ssh.exe is not on the PATH: `ssh DEVICE.porthole` needs OpenSSH's client; install the Windows OpenSSH client " +
			"(Settings > System > Optional features > OpenSSH Client)"
	case "darwin":
		return "ssh is not on the PATH: `ssh DEVICE.porthole` needs OpenSSH's client, which comes with macOS (/usr/bin/ssh)"
	}
	return "ssh is not on the PATH: `ssh DEVICE.porthole` needs OpenSSH's client; install it (on Debian and Ubuntu: apt install openssh-client)"
}

// sshConfigParams are what the block names.
type sshConfigParams struct {
	windows    bool   // for Windows' OpenSSH (ssh.exe)
	exe        string // absolute path of this porthole
	server     string // the server, normalized
	serverFlag bool   // --server was given: the proxy must be told too
	agentDir   string // where the proxies' agent sockets go (not on Windows)
	agentPipe  string // on Windows, the start of their pipes' names (agentPipePrefix)
	knownHosts string
}

// sshConfigBlock is the "Host *.porthole" block, between the markers. It
// ends with "Host *" so that lines after it in the file apply to every
// host again, as they did before it was put at the top.
//
// ssh expands %-tokens in ProxyCommand, IdentityAgent and
// UserKnownHostsFile, hence sshEscape. It runs ProxyCommand with the shell
// on Unix (shellQuote); Windows' ssh.exe hands it to CreateProcess as a
// command line (windowsArg), with no shell. It splits the other lines into
// words itself, and recent releases read a backslash there as an escape
// (older ones as itself), so the paths of Windows' lines are written with
// forward slashes, which Windows takes as well.
func sshConfigBlock(p sshConfigParams) (string, error) {
	for _, s := range []string{p.exe, p.agentDir, p.agentPipe, p.knownHosts, p.server} {
		if strings.ContainsAny(s, "\"\n\r") || strings.Contains(s, "${") {
			return "", fmt.Errorf("%q cannot be written in an ssh config (it holds a quote, a line break or ${)", s)
		}
	}
	var proxy, agent, knownHosts string
	if p.windows {
		agent = p.agentPipe + "%n" // the prefix is //./pipe/porthole- and hex
		knownHosts = sshEscape(strings.ReplaceAll(p.knownHosts, `\`, "/"))
		// The program in quotes, always: ssh.exe passes a command line
		// that starts with a quote as it is, and guesses where an unquoted
		// one's program ends. A path holds no quote, nor ends in \.
		proxy = `"` + sshEscape(p.exe) + `"`
		if p.serverFlag {
			proxy += " --server " + windowsArg(sshEscape(p.server))
		}
		proxy += " proxy --agent-socket " + windowsArg(agent) + " %n"
	} else {
		agent = sshEscape(p.agentDir) + "/%n.sock"
		knownHosts = sshEscape(p.knownHosts)
		proxy = shellQuote(sshEscape(p.exe))
		if p.serverFlag {
			proxy += " --server " + shellQuote(sshEscape(p.server))
		}
		proxy += " proxy --agent-socket " + shellQuote(agent) + " %n"
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("%s", sshConfigBegin)
	w("# Porthole: ssh, scp, sftp and rsync reach devices as DEVICE.porthole (or")
	w("# DEVICE.FLEET.porthole) through `porthole proxy`. Keep this block at the top of")
	w("# ~/.ssh/config, above any \"Host *\" block, whose settings would otherwise win;")
	w("# `porthole ssh-config --write` puts it there.")
	w("Host *%s", hostSuffix)
	w("    ProxyCommand %s", proxy)
	w("    # The session's certificate, served by porthole proxy; no key file is used.")
	w("    IdentityAgent \"%s\"", agent)
	w("    IdentityFile none")
	w("    IdentitiesOnly no")
	w("    PubkeyAuthentication yes")
	w("    # Devices' host certificates are checked against the server's host CA.")
	w("    UserKnownHostsFile \"%s\"", knownHosts)
	w("    StrictHostKeyChecking yes")
	w("    CheckHostIP no")
	w("    # Nothing of this machine reaches the device, and nothing stays open.")
	w("    ForwardAgent no")
	w("    ForwardX11 no")
	w("    ControlMaster no")
	w("    ControlPath none")
	w("Host *")
	w("%s", sshConfigEnd)
	return b.String(), nil
}

// sshEscape doubles the % that ssh would read as the start of a token.
func sshEscape(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// shellQuote quotes s for the shell ssh runs ProxyCommand with.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-%:+=,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// windowsArg quotes s as one argument of a Windows command line, as the C
// runtime (and Go) split one: in double quotes if it holds a space, a tab
// or a quote, or is empty, with a quote's preceding backslashes and the
// closing quote's doubled and the quote escaped (syscall.EscapeArg, which
// exists only on Windows).
func windowsArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(s[i])
	}
	b.WriteString(strings.Repeat(`\`, slashes))
	b.WriteByte('"')
	return b.String()
}

// updateSSHConfig puts block in the ssh config at path: in place of the
// one between the markers, or at the top. A symbolic link (as dotfile
// managers make) is followed, so the file it points to is updated. The
// file is replaced atomically and keeps its mode; a new one is 0600 in a
// 0700 ~/.ssh.
func updateSSHConfig(path, block string) (changed bool, err error) {
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	mode := fs.FileMode(0o600)
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return false, fmt.Errorf("making %s: %w", filepath.Dir(path), err)
		}
	case err != nil:
		return false, fmt.Errorf("reading %s: %w", path, err)
	default:
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
	}
	updated, err := spliceSSHConfig(string(old), block)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if updated == string(old) {
		return false, nil
	}
	if err := atomicfile.WriteFile(path, []byte(updated), mode); err != nil {
		return false, err
	}
	return true, nil
}

// spliceSSHConfig returns config with block in place of the marked one,
// or at the top.
func spliceSSHConfig(config, block string) (string, error) {
	start := strings.Index(config, sshConfigBegin)
	if start < 0 {
		if config == "" {
			return block, nil
		}
		return block + "\n" + config, nil
	}
	end := strings.Index(config[start:], sshConfigEnd)
	if end < 0 {
		return "", fmt.Errorf("it has the line %q but not %q after it: mend or remove the block by hand", sshConfigBegin, sshConfigEnd)
	}
	end += start + len(sshConfigEnd)
	if strings.HasPrefix(config[end:], "\n") {
		end++
	}
	return config[:start] + block + config[end:], nil
}
