package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
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
	sharedFileMode os.FileMode = 0o640
	sharedDirMode  os.FileMode = 0o750
)

// lookupGroup returns the id of group name, or -1 when there is no such
// group.
func lookupGroup(name string) int {
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

// ownerGID is OwnerGroup's id, or -1, looked up once.
var ownerGID = sync.OnceValue(func() int { return lookupGroup(OwnerGroup) })

// share sets path's mode and, when gid >= 0, its group. Giving the file to
// the group can fail when the agent is neither root nor a member; the file
// then stays with the agent's own group, which is no worse.
func share(path string, mode os.FileMode, gid int) error {
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	if gid >= 0 {
		_ = os.Lchown(path, -1, gid)
	}
	return nil
}

// shareFile is share for an open file.
func shareFile(f *os.File, mode os.FileMode, gid int) error {
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if gid >= 0 {
		_ = f.Chown(-1, gid)
	}
	return nil
}

// mkdirShared makes dir (one level) readable by the group; an existing one
// is left as it is.
func mkdirShared(dir string, gid int) error {
	if err := os.Mkdir(dir, sharedDirMode); errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return err
	}
	return share(dir, sharedDirMode, gid)
}

// letGroupIn gives the state directory to the group with search
// permission only, so the group's members reach agent.log and sessions/
// by name. It never widens the directory further, and does nothing when
// there is no such group.
func letGroupIn(stateDir string, gid int) error {
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

// writeFileShared writes path atomically (atomicfile.WriteFile), readable
// by the group.
func writeFileShared(path string, data []byte, gid int) error {
	if err := atomicfile.WriteFile(path, data, sharedFileMode); err != nil {
		return err
	}
	if gid >= 0 {
		_ = os.Lchown(path, -1, gid)
	}
	return nil
}

// dirSize is the bytes of the regular files directly in dir.
func dirSize(dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// sessionDirName is the directory a session is recorded in: its id, which
// a verified command guarantees is one word of [A-Za-z0-9._-]; the few ids
// that could still be read as paths ("..", ".x") are never used as names.
func sessionDirName(id string) string {
	if id == "" || id[0] == '.' || !validDirWord(id) {
		return ""
	}
	return id
}

func validDirWord(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// sessionPath is the directory of session id under the state directory,
// or "" for an id that cannot name one.
func sessionPath(stateDir, id string) string {
	name := sessionDirName(id)
	if name == "" {
		return ""
	}
	return filepath.Join(stateDir, SessionsDir, name)
}
