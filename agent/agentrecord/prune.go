package agentrecord

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/atomicfile"
)

// recover closes the recordings a previous run left open (the agent
// stopped before their sessions ended) and counts what all recordings
// take.
func (r *Recordings) recover() {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		r.log.Error("reading the recordings", "err", err)
		return
	}
	var total int64
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		dir := filepath.Join(r.dir, name)
		atomicfile.RemoveTemps(filepath.Join(dir, SessionMetaFile))
		if m, err := readMeta(dir); err == nil && m.End.IsZero() {
			r.closeInterrupted(dir, m)
		}
		total += dirSize(dir)
	}
	r.used.Store(total)
}

// closeInterrupted ends an interrupted session's recording at the time
// its files were last written.
func (r *Recordings) closeInterrupted(dir string, m *SessionMeta) {
	why := string(control.CloseInterrupted)
	m.End, m.Reason = lastWritten(dir).UTC(), why
	if f, err := openAppend(filepath.Join(dir, SessionEventsFile), r.gid); err == nil {
		line, _ := jsonLine(SessionEvent{Time: m.End, Event: SessionEventEnded, Reason: why})
		f.Write(line)
		f.Sync()
		f.Close()
	}
	if data, err := jsonIndent(m); err == nil {
		if err := agentstate.WriteFileShared(filepath.Join(dir, SessionMetaFile), data, r.gid); err != nil {
			r.log.Error("closing an interrupted recording", "session", m.Session, "err", err)
		}
	}
	r.record(agentlog.Event{Event: eventSessionEnded, Session: m.Session, Reason: why, Bytes: dirSize(dir)})
}

// lastWritten is when a file in dir was last changed.
func lastWritten(dir string) time.Time {
	var t time.Time
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	if t.IsZero() {
		t = time.Now()
	}
	return t
}

// prune applies retention to the sessions not being recorded (nor skip):
// it deletes those that ended more than keep ago, then the oldest until
// all recordings take no more than max_total less reserve.
func (r *Recordings) prune(reserve int64, skip string) {
	r.pruneMu.Lock()
	defer r.pruneMu.Unlock()
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		r.log.Error("reading the recordings for retention", "err", err)
		return
	}
	type candidate struct {
		name string
		when time.Time // when it ended (or started, or was last written)
		size int64
	}
	var cands []candidate
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") || name == skip || r.active(name) {
			continue
		}
		dir := filepath.Join(r.dir, name)
		c := candidate{name: name, size: dirSize(dir)}
		if m, err := readMeta(dir); err == nil {
			c.when = m.End
			if c.when.IsZero() {
				c.when = m.Start
			}
		}
		if c.when.IsZero() {
			c.when = lastWritten(dir)
		}
		cands = append(cands, c)
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(a.when.Compare(b.when), strings.Compare(a.name, b.name))
	})
	now := r.now()
	for _, c := range cands {
		var key, why string
		switch {
		case now.Sub(c.when) > r.keep:
			key, why = "keep", fmt.Sprintf("older than recordings.keep (%v)", Age(r.keep))
		case r.used.Load()+reserve > r.maxTotal:
			key, why = "max_total", fmt.Sprintf("the recordings would take more than recordings.max_total (%v)", ByteSize(r.maxTotal))
		default:
			continue
		}
		if err := os.RemoveAll(filepath.Join(r.dir, c.name)); err != nil {
			r.log.Error("deleting an old recording", "session", c.name, "err", err)
			continue
		}
		r.used.Add(-c.size)
		r.log.Info("deleted a recording", "session", c.name, "reason", why)
		r.record(agentlog.Event{Event: eventRecordingDeleted, Session: c.name, Reason: key, Detail: why, Bytes: c.size})
	}
}
