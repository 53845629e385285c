// Package agentlog is the agent's own record of security events, agent.log
// in the state directory: one JSON object per line, appended and synced
// before the agent acts on the event, and readable by the owner's group
// (what happens inside sessions is in the recordings instead). The running
// agent opens it once (Open) and hands the Log to every part that records
// events; Read and Tail are the owner's side, which work whether the agent
// runs or not.
package agentlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/porthole/porthole/agent/agentstate"
)

// File is the event log's name in the state directory.
const File = "agent.log"

// Event is one line of the event log. Empty fields are left out.
type Event struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`             // what happened: each part that records names its own
	Type    string    `json:"type,omitempty"`    // command type, once verified
	Session string    `json:"session,omitempty"` // session id, once verified
	Reason  string    `json:"reason,omitempty"`  // rejection reason
	Detail  string    `json:"detail,omitempty"`  // what exactly failed
	Size    int       `json:"size,omitempty"`    // bytes received
	User    string    `json:"user,omitempty"`    // the engineer, from the certificate
	Bytes   int64     `json:"bytes,omitempty"`   // a session's recording on disk
}

// reserveFile holds disk space the event log gives up when the disk is
// full, so that the lines saying so (a recording failed, a command refused)
// still reach the owner; reserveSize is its size.
const (
	reserveFile = File + ".reserve"
	reserveSize = 64 << 10
)

// Log appends events to the event log. It is safe for concurrent use: the
// running agent opens one and every part that records events shares it.
type Log struct {
	mu      sync.Mutex
	f       *os.File // guarded by mu
	torn    bool     // guarded by mu: the file ends in half a line
	reserve string   // guarded by mu: the reserve's path; "" once given up
}

// Open opens the event log at path (File in the state directory) for
// appending, creating it readable by the owner's group, and makes the
// reserve beside it if it can: a disk already full has none to keep.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, agentstate.SharedFileMode)
	if err != nil {
		return nil, fmt.Errorf("opening the event log: %w", err)
	}
	if err := agentstate.ShareFile(f, agentstate.SharedFileMode, agentstate.OwnerGID()); err != nil {
		f.Close()
		return nil, fmt.Errorf("opening the event log: %w", err)
	}
	l := &Log{f: f, reserve: filepath.Join(filepath.Dir(path), reserveFile)}
	if err := makeReserve(l.reserve, reserveSize); err != nil {
		os.Remove(l.reserve)
		l.reserve = ""
	}
	return l, nil
}

// makeReserve writes size bytes (not a sparse file: the blocks must be
// taken) to path, unless it holds that many already.
func makeReserve(path string, size int64) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() == size {
		return nil
	}
	return os.WriteFile(path, make([]byte, size), 0o600)
}

// Write appends ev as one line and syncs it to disk, so an event the agent
// acted on is on record even if the device loses power right after.
func (l *Log) Write(ev Event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding an event: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.torn {
		// A write cut short left half a line that could not be cut off:
		// end it, so this event is a line of its own.
		line = append([]byte{'\n'}, line...)
	}
	end, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("writing the event log: %w", err)
	}
	n, err := l.f.Write(line)
	if err != nil && l.reserve != "" && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		// The disk is full: give up the reserve for the rest of the line.
		os.Remove(l.reserve)
		l.reserve = ""
		var m int
		m, err = l.f.Write(line[n:])
		n += m
	}
	if err != nil {
		// Cut the half line off again, so that the next event is read;
		// failing that, the next write ends it first.
		if n > 0 {
			l.torn = l.f.Truncate(end) != nil
		}
		return fmt.Errorf("writing the event log: %w", err)
	}
	l.torn = false
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("syncing the event log: %w", err)
	}
	return nil
}

// Close closes the file; the owner of the Log closes it once every part
// that records events has stopped.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
