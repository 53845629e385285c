// Package emptyhome runs a program (a test's or a benchmark's device agent)
// with the user's home directory hidden behind an empty one, in a mount
// namespace of its own. The agent's shells read the run_as user's
// ~/.bashrc, as sshd's do for a command over SSH; on a machine whose root
// .bashrc does slow work (pyenv init takes a lock and rehashes), fifty
// sessions at once then wait on each other for most of a minute, and a
// test or a benchmark measures that machine's shell set-up, not Porthole.
package emptyhome

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
)

// Wrap returns argv run with the user's home hidden behind an empty
// directory it makes in dir, and the environment variable the wrapper
// reads. Where that is not possible or not needed (not root, no unshare,
// no start-up file in the home), it returns argv as it is and no variable.
func Wrap(dir string, argv []string) (wrapped []string, env []string) {
	home := homeDir()
	if os.Geteuid() != 0 {
		return argv, nil
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return argv, nil
	}
	if _, err := os.Stat(filepath.Join(home, ".bashrc")); err != nil {
		return argv, nil
	}
	empty := filepath.Join(dir, "empty-home")
	if err := os.MkdirAll(empty, 0o700); err != nil {
		return argv, nil
	}
	wrapped = append([]string{"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$0" "$HOME_TO_HIDE" && exec "$@"`, empty}, argv...)
	return wrapped, []string{"HOME_TO_HIDE=" + home}
}

// homeDir is the home directory of the user this process runs as.
func homeDir() string {
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		return u.HomeDir
	}
	return "/root"
}
