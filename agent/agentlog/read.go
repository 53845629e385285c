package agentlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/porthole/porthole/agent/agentstate"
)

// Entry is one line of the event log, as the owner reads it.
type Entry struct {
	Time  time.Time
	Event string
	// Fields are the line's other keys.
	Fields map[string]any
	// Raw is the line as written.
	Raw json.RawMessage
}

// Read reads stateDir's event log, keeping the entries at or after since (all
// of them when since is zero); skipped counts lines that could not be read.
// No log yet is no entries.
func Read(stateDir string, since time.Time) (entries []Entry, skipped int, err error) {
	path := filepath.Join(stateDir, File)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(stateDir); serr != nil {
			return nil, 0, agentstate.ReadError(stateDir, serr)
		}
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, agentstate.ReadError(path, err)
	}
	defer f.Close()
	skipped, err = ForEachLine(f, func(line []byte) error {
		var fields map[string]any
		if err := json.Unmarshal(line, &fields); err != nil {
			return err
		}
		e := Entry{Fields: fields, Raw: json.RawMessage(bytes.TrimSpace(line))}
		ts, _ := fields["time"].(string)
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return err
		}
		e.Time = t
		e.Event, _ = fields["event"].(string)
		delete(fields, "time")
		delete(fields, "event")
		if !since.IsZero() && t.Before(since) {
			return nil
		}
		entries = append(entries, e)
		return nil
	})
	return entries, skipped, err
}

// ForEachLine calls f with each whole line of r, a file of JSON lines such
// as the event log or a session's events; it counts the lines f could not
// use (a partial last line after a crash, say) and returns them.
func ForEachLine(r io.Reader, f func(line []byte) error) (skipped int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if f(line) != nil {
				skipped++
			}
		}
		if errors.Is(err, io.EOF) {
			return skipped, nil
		}
		if err != nil {
			return skipped, err
		}
	}
}

// Tail reads the last n events of stateDir's event log as they were
// written, oldest first; no log yet is none. It reads only the end of the
// file, which grows for as long as the device lives.
func Tail(stateDir string, n int) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	f, err := os.Open(filepath.Join(stateDir, File))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read the tail only: the log grows for as long as the device lives.
	const tailBytes = 4 << 20
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		if _, err := f.Seek(fi.Size()-tailBytes, io.SeekStart); err != nil {
			return nil, err
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var ring []json.RawMessage
	for sc.Scan() {
		line := sc.Bytes()
		if !json.Valid(line) { // a line cut by the seek, or torn
			continue
		}
		ring = append(ring, json.RawMessage(append([]byte(nil), line...)))
		if len(ring) > n {
			ring = ring[1:]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return append(out, ring...), nil
}
