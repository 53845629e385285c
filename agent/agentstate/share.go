package agentstate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"sync"

	"github.com/porthole/porthole/internal/atomicfile"
)

// OwnerGroup is the group whose members may read the agent's log and the
// session recordings without being root: the device's owner, or the local
// page. When it exists, the agent gives those files to it (mode 0640,
// directories 0750) and lets it into the state directory (g+x only, so it
// cannot list the key files, which stay 0600 anyway).
const OwnerGroup = "porthole"

// Modes of what the owner's group may read.
const (
	SharedFileMode os.FileMode = 0o640
	SharedDirMode  os.FileMode = 0o750
)

// LookupGroup returns the id of group name, or -1 when there is no such
// group.
func LookupGroup(name string) int {
	if name == "" {
		return -1
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1
	}
	return gid
}

// OwnerGID is OwnerGroup's id, or -1, looked up once.
var OwnerGID = sync.OnceValue(func() int { return LookupGroup(OwnerGroup) })

// Share sets path's mode and, when gid >= 0, its group. Giving the file to
// the group can fail when the agent is neither root nor a member; the file
// then stays with the agent's own group, which is no worse.
func Share(path string, mode os.FileMode, gid int) error {
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	if gid >= 0 {
		_ = os.Lchown(path, -1, gid)
	}
	return nil
}

// ShareFile is Share for an open file.
func ShareFile(f *os.File, mode os.FileMode, gid int) error {
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if gid >= 0 {
		_ = f.Chown(-1, gid)
	}
	return nil
}

// MkdirShared makes dir (one level) readable by the group; an existing one
// is left as it is.
func MkdirShared(dir string, gid int) error {
	if err := os.Mkdir(dir, SharedDirMode); errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return err
	}
	return Share(dir, SharedDirMode, gid)
}

// LetGroupIn gives the state directory to the group with search
// permission only, so the group's members reach agent.log and sessions/
// by name. It never widens the directory further, and does nothing when
// there is no such group.
func LetGroupIn(stateDir string, gid int) error {
	if gid < 0 {
		return nil
	}
	fi, err := os.Stat(stateDir)
	if err != nil {
		return err
	}
	if err := os.Lchown(stateDir, -1, gid); err != nil {
		return nil // not ours to give; the owner reads as root
	}
	if fi.Mode().Perm()&0o010 == 0 {
		if err := os.Chmod(stateDir, fi.Mode().Perm()|0o010); err != nil {
			return fmt.Errorf("letting the %s group into %s: %w", OwnerGroup, stateDir, err)
		}
	}
	return nil
}

// WriteFileShared writes path atomically (atomicfile.WriteFile), readable
// by the group.
func WriteFileShared(path string, data []byte, gid int) error {
	if err := atomicfile.WriteFile(path, data, SharedFileMode); err != nil {
		return err
	}
	if gid >= 0 {
		_ = os.Lchown(path, -1, gid)
	}
	return nil
}

// ValidUserName accepts a user or group name as useradd does: a letter or underscore, then
// letters, digits, '_', '-' and '.', up to 32 characters.
func ValidUserName(s string) bool {
	return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`).MatchString(s)
}
