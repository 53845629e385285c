package agentssh

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// account is the user that processes run as.
type account struct {
	Name     string
	UID, GID uint32
	Home     string // the home directory /etc/passwd names
	Dir      string // where processes start: Home, or "/" when it is missing
	Shell    string // a usable login shell, or /bin/sh
	// cred is set when the account is not the agent's own user, so
	// processes must switch to it.
	cred *syscall.Credential
}

// passwdFile is where accounts are read from; a variable so that tests can
// give the agent's user a home of their own.
var passwdFile = "/etc/passwd"

// defaultPath is PATH for engineers' processes; the agent's own PATH may
// be a service manager's minimal one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookupAccount finds runAs ("" = the agent's own user) in /etc/passwd and
// checks that the agent can switch to it.
func lookupAccount(runAs string) (*account, error) {
	uid := uint32(os.Getuid())
	var ent *passwdEntry
	var err error
	if runAs == "" {
		ent, err = readPasswd(func(e *passwdEntry) bool { return e.uid == uid })
		if err != nil || ent == nil {
			// A container's user need not be in /etc/passwd: go on
			// with what the environment says.
			name := os.Getenv("USER")
			if name == "" {
				name = strconv.Itoa(int(uid))
			}
			home := os.Getenv("HOME")
			if home == "" {
				home = "/"
			}
			ent = &passwdEntry{name: name, uid: uid, gid: uint32(os.Getgid()), home: home}
		}
	} else {
		ent, err = readPasswd(func(e *passwdEntry) bool { return e.name == runAs })
		if err != nil {
			return nil, err
		}
		if ent == nil {
			return nil, fmt.Errorf("run_as: no user %q in %s", runAs, passwdFile)
		}
	}
	a := &account{Name: ent.name, UID: ent.uid, GID: ent.gid, Home: ent.home, Dir: ent.home, Shell: ent.shell}
	if fi, err := os.Stat(a.Dir); err != nil || !fi.IsDir() {
		a.Dir = "/" // as sshd does for a missing home ("Could not chdir")
	}
	if !usableShell(a.Shell) {
		// Service accounts often have nologin; the owner chose this user
		// for support, so give it a plain shell.
		a.Shell = "/bin/sh"
	}
	if ent.uid != uid || ent.gid != uint32(os.Getgid()) {
		if os.Geteuid() != 0 {
			return nil, fmt.Errorf("run_as: running shells as %q needs the agent to run as root; it runs as uid %d", a.Name, uid)
		}
		groups, err := supplementaryGroups(a.Name)
		if err != nil {
			return nil, fmt.Errorf("run_as: groups of %q: %w", a.Name, err)
		}
		a.cred = &syscall.Credential{Uid: a.UID, Gid: a.GID, Groups: groups}
	}
	return a, nil
}

// usableShell refuses shells that exist to refuse logins.
func usableShell(sh string) bool {
	if sh == "" || !filepath.IsAbs(sh) {
		return false
	}
	switch filepath.Base(sh) {
	case "nologin", "false":
		return false
	}
	fi, err := os.Stat(sh)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func supplementaryGroups(name string) ([]uint32, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	ids, err := u.GroupIds()
	var unknown user.UnknownUserError
	if err != nil && !errors.As(err, &unknown) {
		return nil, err
	}
	var groups []uint32
	for _, id := range ids {
		n, err := strconv.ParseUint(id, 10, 32)
		if err == nil {
			groups = append(groups, uint32(n))
		}
	}
	return groups, nil
}

type passwdEntry struct {
	name        string
	uid, gid    uint32
	home, shell string
}

// readPasswd returns the first entry of /etc/passwd that match accepts, or
// nil. os/user has no login shell, hence this small reader.
func readPasswd(match func(*passwdEntry) bool) (*passwdEntry, error) {
	f, err := os.Open(passwdFile)
	if err != nil {
		return nil, fmt.Errorf("reading users: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		e, ok := parsePasswdLine(sc.Text())
		if ok && match(e) {
			return e, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading users: %w", err)
	}
	return nil, nil
}

func parsePasswdLine(line string) (*passwdEntry, bool) {
	if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
		return nil, false
	}
	f := strings.Split(line, ":")
	if len(f) != 7 {
		return nil, false
	}
	uid, err1 := strconv.ParseUint(f[2], 10, 32)
	gid, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil || f[0] == "" {
		return nil, false
	}
	return &passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5], shell: f[6]}, true
}

// env is the environment of an engineer's process, before TERM and the
// client's allowed variables.
func (a *account) env() []string {
	return []string{
		"HOME=" + a.Home,
		"USER=" + a.Name,
		"LOGNAME=" + a.Name,
		"SHELL=" + a.Shell,
		"PATH=" + defaultPath,
	}
}
