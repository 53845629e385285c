package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
)

// Where `porthole proxy` serves the session's agent to ssh. On Unix it is
// a socket in the config dir's agent/ (0700), named for the host. Windows'
// OpenSSH reaches an agent only through a named pipe (it opens what
// IdentityAgent or SSH_AUTH_SOCK names with CreateFile, as it does its own
// agent's \\.\pipe\openssh-ssh-agent), so there it is a pipe. Pipe names
// are one namespace for the whole machine: each user's carry a tag of
// their config dir, and only the user may open them (agentPipeSDDL).

// agentSocketFor is the default --agent-socket on goos for host, given
// the config dir.
func agentSocketFor(goos, dir, host string) string {
	if goos == "windows" {
		return agentPipePrefix(dir) + host
	}
	return filepath.Join(dir, agentSocketDir, host+".sock")
}

// agentPipePrefix is the start of this user's agent pipes' names, before
// the host: //./pipe/porthole-TAG-. It is written with forward slashes,
// which Windows takes as well: ssh_config reads a backslash as an escape
// in recent OpenSSH releases and as itself in older ones.
func agentPipePrefix(dir string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(dir))) // Windows paths ignore case
	return pipePrefix + "porthole-" + hex.EncodeToString(sum[:6]) + "-"
}

const pipePrefix = "//./pipe/"

// isPipePath reports whether p names a local named pipe: //./pipe/NAME or
// \\.\pipe\NAME.
func isPipePath(p string) bool {
	p = strings.ReplaceAll(p, `\`, "/")
	return len(p) > len(pipePrefix) && strings.EqualFold(p[:len(pipePrefix)], pipePrefix) &&
		!strings.Contains(p[len(pipePrefix):], "/")
}

// checkAgentSocket says what is wrong with socket as an --agent-socket
// for goos's OpenSSH.
func checkAgentSocket(goos, socket string) error {
	if goos == "windows" {
		if !isPipePath(socket) {
			return fmt.Errorf("on Windows, ssh reaches its agent through a named pipe: give --agent-socket as //./pipe/NAME, "+
				"and the same in IdentityAgent, not %s (`porthole ssh-config` writes both)", socket)
		}
		return nil
	}
	if len(socket) > maxSocketPath {
		return fmt.Errorf("the agent socket path %s is too long for a Unix socket (%d bytes, at most %d): "+
			"give a shorter one with --agent-socket in both ProxyCommand and IdentityAgent", socket, len(socket), maxSocketPath)
	}
	return nil
}

// agentPipeSDDL is the security descriptor of a session agent's pipe on
// Windows, in SDDL: a protected DACL (P) that lets the user sid alone open
// it (GA), so that no other user of the machine can have the session's key
// sign. (A pipe's default DACL lets everyone read it.)
func agentPipeSDDL(sid string) string { return "D:P(A;;GA;;;" + sid + ")" }

// Win32 error codes that ListenPipe fails with when a pipe of the name
// exists: creating a pipe's first instance is exclusive.
const (
	winErrorAccessDenied  = 5
	winErrorAlreadyExists = 183
)

// pipeInUse reports whether err is a named pipe's creation failing because
// the name is taken: by another proxy for the same host whose ssh has not
// yet logged in, or by someone else, whose pipe is never shared.
func pipeInUse(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	return errno == winErrorAccessDenied || errno == winErrorAlreadyExists
}
