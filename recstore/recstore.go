// Package recstore keeps the bytes of the session recordings devices
// upload to the server: the files of each session, which only grow by
// appends at their end (meta.json alone is replaced whole), and a lock per
// session under which an upload reads sizes and appends. The API decides
// what may be stored (names, offsets, caps, the bytes sent again); a Store
// only keeps it.
//
// Dir keeps them in a local directory, with locks of this process: the
// default, for one server node. recstore/s3store keeps them in
// S3-compatible object storage, with locks that hold across server nodes
// (issue 14). recstore/recstoretest checks both against one list of what
// every Store must do.
package recstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode"
	"unicode/utf8"
)

// Key names one session's recording. Both parts are IDs the server's
// store made; a Store refuses any other (see ValidKey).
type Key struct {
	Fleet, Session string
}

// ErrNotExist is in the chain of Open's error for a file the session does
// not have (yet).
var ErrNotExist = errors.New("recstore: no such file")

// ErrOffsetTaken is in the chain of Append's error when other bytes were
// written at its offset meanwhile, by an upload that did not hold the lock
// (one whose node was taken for dead). The file holds those bytes, whole;
// the upload may be sent again from the size the store now holds.
var ErrOffsetTaken = errors.New("recstore: other bytes were written at this offset meanwhile")

// Store keeps the recordings' bytes. Its methods are safe for concurrent
// use; Append and Replace on one session are made under its Lock.
type Store interface {
	// Lock takes key's upload lock and returns what releases it: one
	// upload at a time per session. It gives up, with ctx's error, when
	// ctx ends first.
	Lock(ctx context.Context, key Key) (unlock func(), err error)
	// Size is the size of a file, 0 when it does not exist.
	Size(ctx context.Context, key Key, name string) (int64, error)
	// ReadAt fills p from the file at offset; bytes past the end are an
	// error.
	ReadAt(ctx context.Context, key Key, name string, p []byte, offset int64) error
	// Append writes data at offset, which is the file's size, and makes
	// it durable; a failed append leaves the file as it was. Empty data
	// changes nothing.
	Append(ctx context.Context, key Key, name string, offset int64, data []byte) error
	// Replace writes the whole file, durably, in place of what it held.
	Replace(ctx context.Context, key Key, name string, data []byte) error
	// Open opens a file for reading, for an HTTP answer with ranges.
	Open(ctx context.Context, key Key, name string) (File, error)
	// Delete removes a session's recording, every file of it.
	Delete(ctx context.Context, key Key) error
}

// File is a recording's file opened for reading.
type File interface {
	io.ReadSeekCloser
	ModTime() time.Time
}

// ValidKey reports whether both parts of key are IDs the store makes: 1 to
// 64 of A-Z, a-z, 0-9, '_' and '-', so that neither can name a path.
func ValidKey(key Key) bool { return validWord(key.Fleet) && validWord(key.Session) }

func validWord(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CheckKey says why key cannot name a recording (see ValidKey), or
// returns nil.
func CheckKey(key Key) error {
	if !ValidKey(key) {
		return fmt.Errorf("recstore: session %q of fleet %q cannot name a recording", key.Session, key.Fleet)
	}
	return nil
}

// Check says why key and name cannot name a file of a recording, or
// returns nil: key must be valid (ValidKey), and name one element of a
// path, of printable UTF-8, at most 255 bytes, neither "." nor "..".
func Check(key Key, name string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if !ValidName(name) {
		return fmt.Errorf("recstore: %q cannot name a file of a recording", name)
	}
	return nil
}

// ValidName reports whether name can name a file of a recording, or one
// element of a path: printable UTF-8 of 1 to 255 bytes, without '/' or
// '\', neither "." nor "..".
func ValidName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == '/' || r == '\\' || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
