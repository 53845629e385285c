package agentrecord

import (
	"os"
	"path/filepath"
)

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

// SessionPath is the directory of session id under the state directory,
// or "" for an id that cannot name one.
func SessionPath(stateDir, id string) string {
	name := sessionDirName(id)
	if name == "" {
		return ""
	}
	return filepath.Join(stateDir, SessionsDir, name)
}
