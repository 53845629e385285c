package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	for _, d := range []string{dir, filepath.Join(dir, agentSocketDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("making %s: %w", d, err)
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
	block, err := sshConfigBlock(sshConfigParams{
		exe:        exe,
		server:     a.target.server,
		serverFlag: a.server != "",
		agentDir:   filepath.Join(dir, agentSocketDir),
		knownHosts: knownHosts,
	})
	if err != nil {
		return err
	}
	if !write {
		fmt.Fprint(a.io.Out, block)
		fmt.Fprintf(a.io.Err, "wrote the host CA to %s; put the block above at the top of ~/.ssh/config, or run `porthole ssh-config --write`\n", knownHosts)
		return nil
	}
	home := a.io.Getenv("HOME")
	if home == "" {
		return errors.New("HOME is not set, so there is no ~/.ssh/config to write: print the block without --write and place it yourself")
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

// sshConfigParams are what the block names.
type sshConfigParams struct {
	exe        string // absolute path of this porthole
	server     string // the server, normalized
	serverFlag bool   // --server was given: the proxy must be told too
	agentDir   string
	knownHosts string
}

// sshConfigBlock is the "Host *.porthole" block, between the markers. It
// ends with "Host *" so that lines after it in the file apply to every
// host again, as they did before it was put at the top.
func sshConfigBlock(p sshConfigParams) (string, error) {
	for _, s := range []string{p.exe, p.agentDir, p.knownHosts, p.server} {
		if strings.ContainsAny(s, "\"\n\r") || strings.Contains(s, "${") {
			return "", fmt.Errorf("%q cannot be written in an ssh config (it holds a quote, a line break or ${)", s)
		}
	}
	proxy := shellQuote(sshEscape(p.exe))
	if p.serverFlag {
		proxy += " --server " + shellQuote(sshEscape(p.server))
	}
	proxy += " proxy --agent-socket " + shellQuote(sshEscape(p.agentDir)+"/%n.sock") + " %n"
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
	w("    IdentityAgent \"%s/%%n.sock\"", sshEscape(p.agentDir))
	w("    IdentityFile none")
	w("    IdentitiesOnly no")
	w("    PubkeyAuthentication yes")
	w("    # Devices' host certificates are checked against the server's host CA.")
	w("    UserKnownHostsFile \"%s\"", sshEscape(p.knownHosts))
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
