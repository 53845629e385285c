package agentrecord

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agentssh"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/sessioncert"
)

// Events of the recorder in the event log (see Recordings).
const (
	eventEngineerConnected    = "engineer_connected"
	eventEngineerDisconnected = "engineer_disconnected"
	eventSessionEnded         = "session_ended"
	eventRecordingTruncated   = "recording_truncated"
	eventRecordingFailed      = "recording_failed"
	eventRecordingDeleted     = "recording_deleted"
)

// SessionsDir holds the recordings of engineers' sessions in the state
// directory, one directory per session named by its id:
//
//	sessions/                  0750, group agentstate.OwnerGroup when it exists
//	  .lock                    held by the running agent's recorder
//	  <session>/               0750
//	    meta.json              0640, replaced whole (write, fsync, rename)
//	    events.jsonl           0640, append-only: one SessionEvent a line
//	    0001-pty.cast          0640, append-only asciicast v2, process 1
//	    0002-exec.cast         ... one per process that wrote anything
//	    upload.json            the uploader's own progress (never the recorder's)
//
// meta.json (SessionMeta) says who came (their certificates' claims), when
// the session started and ended and why, and what was cut short; it has no
// end while the session is recorded. events.jsonl has every engineer
// connection and disconnection, every shell and command (with its exit
// status and the bytes it read and wrote), every SFTP operation (operation,
// path, bytes) and every port forward (target, bytes, duration). Each
// process with output gets an asciicast v2 file (see CastHeader), named
// after its number in the session and whether it had a terminal ("pty")
// or not ("exec"); input is in it ("i" events) only with record_input.
//
// For an uploader: the .cast files and events.jsonl only ever grow, by whole
// lines (a crash may leave one partial last line, which readers skip), so
// what was sent is an offset per file, kept in upload.json in the session's
// directory; once meta.json has an end, nothing more is written there except
// meta.json itself. Options.Changed says when a session's files
// grew or it ended. Retention (Config) deletes whole directories,
// uploaded or not: the owner's disk limits come first.
const SessionsDir = "sessions"

// Files of a session's directory (see SessionsDir).
const (
	SessionMetaFile   = "meta.json"
	SessionEventsFile = "events.jsonl"
	SessionUploadFile = "upload.json"
	sessionsLockFile  = ".lock"
)

// SessionMeta is a session's meta.json.
type SessionMeta struct {
	Session string    `json:"session"`
	Device  string    `json:"device,omitempty"`
	Start   time.Time `json:"start"`            // the first engineer connection
	End     time.Time `json:"end,omitzero"`     // zero while it is being recorded
	Reason  string    `json:"reason,omitempty"` // why it ended: closed, idle_timeout, ...
	// Who came: one entry per certificate, in the order they connected.
	Who         []Engineer `json:"who"`
	Connections int        `json:"connections"` // engineer connections
	Processes   int        `json:"processes"`   // shells and commands
	// OutputBytes and InputBytes are what the processes wrote and what
	// the engineers sent them, recorded or not.
	OutputBytes int64 `json:"output_bytes"`
	InputBytes  int64 `json:"input_bytes"`
	RecordInput bool  `json:"record_input"`
	// Truncated names what reached a cap: "output" (the asciicasts),
	// "events" (events.jsonl).
	Truncated  []string `json:"truncated,omitempty"`
	MaxSession int64    `json:"max_session"`
	MaxEvents  int64    `json:"max_events"`
}

// Engineer is who connected, as their session certificate says.
type Engineer struct {
	User        string    `json:"user"`
	ValidAfter  time.Time `json:"valid_after"`
	ValidBefore time.Time `json:"valid_before"`
	Connected   time.Time `json:"connected"` // first connection with it
}

// maxEngineers bounds meta.json's who list.
const maxEngineers = 32

// Kinds of SessionEvent.
const (
	SessionEventConnected    = "connected"
	SessionEventDisconnected = "disconnected"
	SessionEventProcess      = "process" // a shell or command started
	SessionEventExit         = "exit"
	SessionEventSFTP         = "sftp"
	SessionEventForward      = "forward"
	SessionEventTruncated    = "truncated"
	SessionEventEnded        = "ended"
)

// SessionEvent is one line of events.jsonl. Which fields are set depends on
// the kind; empty ones are left out.
type SessionEvent struct {
	Time  time.Time `json:"time"`
	Event string    `json:"event"`

	User        string    `json:"user,omitempty"`        // connected
	ValidBefore time.Time `json:"valid_before,omitzero"` // connected: the certificate's end
	Reason      string    `json:"reason,omitempty"`      // disconnected ("" when the engineer hung up), ended

	Process int    `json:"process,omitempty"` // process, exit, truncated: its number in the session
	Channel int    `json:"channel,omitempty"` // process: the SSH channel in its connection
	Command string `json:"command,omitempty"` // process: the command line; none for a login shell
	RunAs   string `json:"run_as,omitempty"`  // process
	PTY     bool   `json:"pty,omitempty"`     // process: with a terminal
	Term    string `json:"term,omitempty"`    // process
	Cols    int    `json:"cols,omitempty"`    // process
	Rows    int    `json:"rows,omitempty"`    // process

	Status *int   `json:"status,omitempty"` // exit: the exit status; -1 for a signal
	Signal string `json:"signal,omitempty"` // exit
	Killed bool   `json:"killed,omitempty"` // exit: the agent killed it as the channel or session ended
	Cast   string `json:"cast,omitempty"`   // exit: its recording's file, if it wrote anything

	Op     string `json:"op,omitempty"`     // sftp: read, write, list, remove, rename, ...
	Path   string `json:"path,omitempty"`   // sftp
	Target string `json:"target,omitempty"` // sftp: the new name or link target; forward: host:port
	Bytes  int64  `json:"bytes,omitempty"`  // sftp: bytes read or written
	Error  string `json:"error,omitempty"`  // sftp: why it failed

	Refused    string `json:"refused,omitempty"`     // forward: why it was refused
	In         int64  `json:"in,omitempty"`          // exit, forward: bytes from the engineer
	Out        int64  `json:"out,omitempty"`         // exit, forward: bytes to the engineer
	DurationMS int64  `json:"duration_ms,omitempty"` // exit, forward

	What      string `json:"what,omitempty"`      // truncated: output or events
	Limit     int64  `json:"limit,omitempty"`     // truncated: the cap reached, in bytes
	Detail    string `json:"detail,omitempty"`    // truncated: which cap, in words
	Truncated bool   `json:"truncated,omitempty"` // exit: some of its output was not recorded
}

// Options are the inputs of Open.
type Options struct {
	// StateDir is the agent's state directory. Required.
	StateDir string
	// Log is the agent's event log (agentlog.Open), where sessions
	// starting and ending and recordings cut short, deleted or failing
	// are told; the caller closes it after Close. Required.
	Log *agentlog.Log
	// Config is the owner's caps on the recordings (key recordings in
	// agent.yaml). The zero value is the defaults.
	Config Config
	// RecordInput also records what engineers type (record_input in
	// agent.yaml). False: only their terminal's echo is recorded.
	RecordInput bool
	// Device is this device's name, for the recordings' titles.
	Device string
	// Logger gets failures to record. Nil: nothing is logged.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Group is the group given the files. Empty: agentstate.OwnerGroup, when it
	// exists.
	Group string
	// Changed, if set, is called with a session's id when its files
	// have grown (at most every FlushEvery) and when it ended: a hook
	// for the uploader. It must not block.
	Changed func(session string)
	// FlushEvery is how often buffered recordings are written out (not
	// synced). Zero: one second.
	FlushEvery time.Duration
}

// Recordings records engineers' sessions in the state directory's
// SessionsDir (see there for the layout), as agentssh.Recorder, and keeps
// them within the owner's caps (Config). Writes are buffered and
// reach the disk every FlushEvery; events.jsonl is synced at each
// connection and disconnection, each process start, each cap reached, and
// at the end, and each asciicast when its process ends. Sessions starting
// and ending, and recordings cut short, deleted or failing, are also in
// agent.log.
//
// A session that cannot be recorded (its directory or a file cannot be
// written) is ended through the hook OnFail sets: the owner must see
// everything. A session that reaches a cap (so that an engineer's `cat
// /dev/urandom` cannot fill the disk) fails closed: from then on Full says
// why, and the SSH server refuses new shells, commands, file operations
// and forwards and ends those running; how they ended is still written,
// within eventsTail past max_events, and past that the session is ended
// too. Padding the recording therefore blinds nothing.
type Recordings struct {
	stateDir, dir string
	device        string
	recordInput   bool
	maxSession    int64
	maxEvents     int64
	maxTotal      int64
	keep          time.Duration
	log           *slog.Logger
	now           func() time.Time
	gid           int
	changed       func(string)
	events        *agentlog.Log // agent.log
	unlock        func() error
	used          atomic.Int64 // bytes of all recordings, on disk or buffered

	createMu sync.Mutex // one session directory made at a time
	pruneMu  sync.Mutex // one retention pass at a time

	// mu is read-locked for every chunk an engineer's processes, forwards
	// and files move (Full, through the session's lookup), by every
	// session at once: a reader does not wait for another.
	mu       sync.RWMutex
	sessions map[string]*sessionRec // guarded by mu: sessions being recorded
	onFail   func(session string)   // guarded by mu: set by OnFail
	closed   bool                   // guarded by mu

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ agentssh.Recorder = (*Recordings)(nil)

// Open prepares the state directory's SessionsDir and takes its
// lock (one recording agent per state directory), closes the recordings
// of sessions a previous run left open (reason "interrupted"), and applies
// retention. Close releases it.
func Open(opts Options) (_ *Recordings, err error) {
	if opts.StateDir == "" || opts.Log == nil {
		return nil, errors.New("agentrecord: recordings need the state directory and its event log")
	}
	rc := opts.Config
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	r := &Recordings{
		stateDir: opts.StateDir, dir: filepath.Join(opts.StateDir, SessionsDir),
		device: opts.Device, recordInput: opts.RecordInput,
		maxSession: rc.maxSession(), maxEvents: rc.maxEvents(), maxTotal: rc.maxTotal(), keep: rc.keep(),
		log: opts.Logger, now: opts.Now, changed: opts.Changed, events: opts.Log,
		sessions: map[string]*sessionRec{}, stop: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "recorder")
	if r.now == nil {
		r.now = time.Now
	}
	if opts.Group == "" {
		r.gid = agentstate.OwnerGID()
	} else {
		r.gid = agentstate.LookupGroup(opts.Group)
	}
	defer func() {
		if err != nil {
			r.release()
		}
	}()
	if err := agentstate.LetGroupIn(r.stateDir, r.gid); err != nil {
		return nil, err
	}
	if err := agentstate.MkdirShared(r.dir, r.gid); err != nil {
		return nil, fmt.Errorf("making the recordings directory: %w", err)
	}
	if r.unlock, err = agentstate.Lock(filepath.Join(r.dir, sessionsLockFile), fmt.Sprintf(
		"another porthole-agent is already recording sessions in %s; stop it first", r.dir)); err != nil {
		return nil, err
	}
	r.recover()
	r.prune(0, "")
	every := opts.FlushEvery
	if every <= 0 {
		every = time.Second
	}
	r.wg.Go(func() { r.flushLoop(every) })
	return r, nil
}

// Close ends the recordings of sessions still open (reason
// agent_stopping), writes everything out and releases the directory.
// Calls after Close record nothing.
func (r *Recordings) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		open := make([]*sessionRec, 0, len(r.sessions))
		for _, s := range r.sessions {
			open = append(open, s)
		}
		clear(r.sessions)
		r.mu.Unlock()
		close(r.stop)
		r.wg.Wait()
		for _, s := range open {
			s.finish(control.CloseAgentStopping)
		}
		r.release()
	})
	return nil
}

func (r *Recordings) release() {
	if r.unlock != nil {
		r.unlock()
	}
}

// OnFail sets the hook that closes a session the recorder cannot record
// (its directory or a file cannot be written): the owner must see
// everything, so such a session must end. It is called from the
// recorder's goroutines and must not block. Nil: nothing is closed.
func (r *Recordings) OnFail(closeSession func(session string)) {
	r.mu.Lock()
	r.onFail = closeSession
	r.mu.Unlock()
}

// Connected implements agentssh.Recorder.
func (r *Recordings) Connected(session string, who sessioncert.Claims) {
	s, err := r.openSession(session)
	if err != nil {
		r.failSession(session, err)
		return
	}
	s.connected(who)
}

// Disconnected implements agentssh.Recorder.
func (r *Recordings) Disconnected(session, reason string) {
	if s := r.session(session); s != nil {
		s.disconnected(reason)
	}
}

// Process implements agentssh.Recorder.
func (r *Recordings) Process(session string, p agentssh.Process) agentssh.ProcessRecorder {
	s := r.session(session)
	if s == nil {
		return nil
	}
	return s.process(p)
}

// SFTP implements agentssh.Recorder.
func (r *Recordings) SFTP(session string, op agentssh.SFTPOp) {
	if s := r.session(session); s != nil {
		s.event(SessionEvent{Event: SessionEventSFTP, Op: op.Op, Path: op.Path, Target: op.Target, Bytes: op.Bytes, Error: op.Err}, 0)
	}
}

// Full implements agentssh.Recorder: once one of the session's caps is
// reached (its events, its output, or the device's total), or its
// recording has ended or could not start, it says why, and the SSH server
// refuses anything new on the session and ends what runs.
func (r *Recordings) Full(session string) string {
	s := r.session(session)
	if s == nil {
		return "this session is not being recorded (its recording ended or could not start), and the device lets nothing happen that it does not record; open a new session"
	}
	if why := s.fullWhy.Load(); why != nil {
		return *why
	}
	return ""
}

// Forward implements agentssh.Recorder.
func (r *Recordings) Forward(session string, f agentssh.Forward) {
	if s := r.session(session); s != nil {
		var flags eventFlags
		if f.Refused != "" {
			flags = syncEvent
		}
		s.event(SessionEvent{Event: SessionEventForward, Target: f.Target, Refused: f.Refused,
			In: f.In, Out: f.Out, DurationMS: f.Duration.Milliseconds()}, flags)
	}
}

// SessionEnded closes a session's recording: reason is why it ended, as
// in tunnel_down. Whoever runs the sessions calls it as each ends; it
// does nothing for a session no engineer reached.
func (r *Recordings) SessionEnded(session string, reason control.CloseReason) {
	r.mu.Lock()
	s, closed := r.sessions[session], r.closed
	r.mu.Unlock()
	if s == nil || closed {
		return
	}
	// Finished before it leaves the map, so that retention, which spares
	// the sessions in it, never deletes it half written.
	s.finish(reason)
	r.mu.Lock()
	if r.sessions[session] == s {
		delete(r.sessions, session)
	}
	if !r.closed {
		r.wg.Go(func() { r.prune(0, "") })
	}
	r.mu.Unlock()
	r.notify(session)
}

// session is a session being recorded, or nil.
func (r *Recordings) session(id string) *sessionRec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.sessions[id]
}

func (r *Recordings) active(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.sessions[name]
	return ok
}

func (r *Recordings) notify(session string) {
	if r.changed != nil {
		r.changed(session)
	}
}

// record writes an event to agent.log.
func (r *Recordings) record(ev agentlog.Event) {
	ev.Time = r.now().UTC()
	if err := r.events.Write(ev); err != nil {
		r.log.Error("the event log cannot be written", "event", ev.Event, "err", err)
	}
}

// failSession reports a session that cannot be recorded and has it closed.
func (r *Recordings) failSession(session string, err error) {
	r.log.Error("cannot record the session; closing it", "session", session, "err", err)
	r.record(agentlog.Event{Event: eventRecordingFailed, Session: session, Detail: err.Error()})
	r.mu.Lock()
	fail := r.onFail
	r.mu.Unlock()
	if fail != nil {
		fail(session)
	}
}

// openSession returns the session's recorder, making its directory at its
// first connection, after making room for it.
func (r *Recordings) openSession(id string) (*sessionRec, error) {
	r.createMu.Lock()
	defer r.createMu.Unlock()
	r.mu.Lock()
	s, closed := r.sessions[id], r.closed
	r.mu.Unlock()
	switch {
	case s != nil:
		return s, nil
	case closed:
		return nil, errors.New("the agent is stopping")
	}
	dir := SessionPath(r.stateDir, id)
	if dir == "" {
		return nil, fmt.Errorf("the session id %q cannot name a directory", id)
	}
	r.prune(r.maxSession+r.maxEvents, id)
	if err := agentstate.MkdirShared(dir, r.gid); err != nil {
		return nil, fmt.Errorf("making the session's directory: %w", err)
	}
	s = &sessionRec{r: r, id: id, dir: dir, casts: map[*lineFile]struct{}{}}
	s.meta = SessionMeta{Session: id, Device: r.device, Start: r.now().UTC(), RecordInput: r.recordInput,
		MaxSession: r.maxSession, MaxEvents: r.maxEvents}
	if old, err := readMeta(dir); err == nil {
		// The same session again (a restart in between): go on with it.
		s.meta = *old
		s.meta.End, s.meta.Reason = time.Time{}, ""
		s.outputFull.Store(slices.Contains(old.Truncated, "output"))
		s.eventsFull = slices.Contains(old.Truncated, "events")
		if len(old.Truncated) > 0 {
			s.setFull("its " + strings.Join(old.Truncated, " and ") + " reached a cap before the agent restarted")
		}
	}
	f, err := openAppend(filepath.Join(dir, SessionEventsFile), r.gid)
	if err != nil {
		return nil, fmt.Errorf("opening the session's events: %w", err)
	}
	s.events = &lineFile{f: f}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && filepath.Ext(e.Name()) == castExt {
				s.castBytes.Add(fi.Size())
			}
		}
	}
	if fi, err := f.Stat(); err == nil {
		s.eventBytes.Store(fi.Size())
	}
	r.mu.Lock()
	r.sessions[id] = s
	r.mu.Unlock()
	return s, nil
}

// openAppend opens path for appending, readable by the group, and ends an
// unfinished last line left by a crash so the next line starts clean.
func openAppend(path string, gid int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, agentstate.SharedFileMode)
	if err != nil {
		return nil, err
	}
	if err := agentstate.ShareFile(f, agentstate.SharedFileMode, gid); err != nil {
		f.Close()
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			f.Write([]byte{'\n'})
		}
	}
	return f, nil
}

// flushLoop writes out buffered recordings every so often.
func (r *Recordings) flushLoop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.mu.Lock()
			open := make([]*sessionRec, 0, len(r.sessions))
			for _, s := range r.sessions {
				open = append(open, s)
			}
			r.mu.Unlock()
			for _, s := range open {
				if s.flush() {
					r.notify(s.id)
				}
			}
		}
	}
}

// sessionRec records one session.
type sessionRec struct {
	r       *Recordings
	id, dir string
	events  *lineFile

	castBytes  atomic.Int64 // bytes of the session's asciicasts
	eventBytes atomic.Int64 // bytes of events.jsonl
	outputFull atomic.Bool  // the asciicasts reached a cap
	// fullWhy, once set, is why nothing more may happen in the session
	// (Recordings.Full): one of its caps was reached.
	fullWhy  atomic.Pointer[string]
	output   atomic.Int64 // bytes processes wrote
	input    atomic.Int64 // bytes engineers sent them
	failOnce sync.Once
	failed   atomic.Bool // the recording could not be written: nothing more is tried

	emu        sync.Mutex // orders events.jsonl and its cap
	eventsFull bool       // guarded by emu
	tail       int        // guarded by emu: bytes written past the cap (eventsTail)

	mu          sync.Mutex
	meta        SessionMeta            // guarded by mu
	user        string                 // guarded by mu: the last engineer to connect
	disconnects int                    // guarded by mu
	casts       map[*lineFile]struct{} // guarded by mu: open asciicasts
	ended       bool                   // guarded by mu
}

type eventFlags int

const (
	syncEvent  eventFlags = 1 << iota // fsync events.jsonl after it
	forceEvent                        // write it even past the cap (bounded: one per session)
)

// errRecordingClosed is a write after the recording ended; it is dropped.
var errRecordingClosed = errors.New("agentrecord: the recording is closed")

// eventsTail is what events.jsonl may take past max_events, for the end of
// what was running when the cap was reached (a command's exit, a
// forward's target and bytes, a file copy, a disconnection): nothing new
// starts past a cap, but what ran must still be on record. Past the tail
// too, the session is ended (errEventsTailSpent).
const eventsTail = 16 << 10

// errEventsTailSpent ends a session whose events passed max_events and
// eventsTail.
var errEventsTailSpent = fmt.Errorf("agentrecord: the session's events passed recordings.max_events and the %v kept past it for what was running", ByteSize(eventsTail))

// fail ends a session whose recording cannot be written (a full disk, a
// spent tail), once. Until the session is closed it fails closed as at a
// cap: nothing starts, and what runs stops at its next byte.
func (s *sessionRec) fail(err error) {
	if err == nil || errors.Is(err, errRecordingClosed) {
		return
	}
	s.failOnce.Do(func() {
		why, todo := failureWords(err)
		msg := "this session's recording failed (" + why + "), and the device lets nothing happen that it cannot record; " + todo
		s.fullWhy.CompareAndSwap(nil, &msg)
		s.failed.Store(true)
		s.r.failSession(s.id, err)
	})
}

// failureWords says why a recording could not be written and what to do,
// for the engineer: the cause, not the device's paths.
func failureWords(err error) (why, todo string) {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "the device's disk is full", "its owner must make room on it (the agent's log says where) before a new session can be recorded"
	case errors.Is(err, errEventsTailSpent):
		return "its events passed recordings.max_events", "open a new session"
	}
	return "the device could not write it", "its owner can read why in the agent's log; open a new session once it is mended"
}

// reserve takes n bytes from a per-session budget and the device's total;
// when either is spent it says which, in words.
func (s *sessionRec) reserve(used *atomic.Int64, limit int64, key string, n int) (ok bool, why string, lim int64) {
	if used.Add(int64(n)) > limit {
		used.Add(-int64(n))
		return false, fmt.Sprintf("the session reached recordings.%s (%v)", key, ByteSize(limit)), limit
	}
	if s.r.used.Add(int64(n)) > s.r.maxTotal {
		s.r.used.Add(-int64(n))
		used.Add(-int64(n))
		return false, fmt.Sprintf("the device's recordings reached recordings.max_total (%v)", ByteSize(s.r.maxTotal)), s.r.maxTotal
	}
	return true, "", 0
}

// spend counts bytes written past the budget (markers).
func (s *sessionRec) spend(used *atomic.Int64, n int) {
	used.Add(int64(n))
	s.r.used.Add(int64(n))
}

// event appends ev to events.jsonl, within the session's cap.
func (s *sessionRec) event(ev SessionEvent, flags eventFlags) {
	ev.Time = s.r.now().UTC()
	line, err := jsonLine(ev)
	if err != nil {
		return
	}
	s.emu.Lock()
	if s.eventsFull && flags&forceEvent == 0 {
		// Past the cap nothing new starts (Full), so this is the end of
		// something that ran: it goes into the tail, or the session ends.
		if s.tail+len(line) > eventsTail {
			s.emu.Unlock()
			s.fail(errEventsTailSpent)
			return
		}
		s.tail += len(line)
		s.spend(&s.eventBytes, len(line))
		err = s.events.write(line)
		if err == nil && flags&syncEvent != 0 {
			err = s.events.sync()
		}
		s.emu.Unlock()
		s.fail(err)
		return
	}
	full, why := false, ""
	if ok, w, lim := s.reserve(&s.eventBytes, s.r.maxEvents, "max_events", len(line)); !ok && flags&forceEvent == 0 {
		full, why = true, w
		s.eventsFull = true
		line, _ = jsonLine(SessionEvent{Time: ev.Time, Event: SessionEventTruncated, What: "events", Limit: lim, Detail: why})
		s.spend(&s.eventBytes, len(line))
		flags |= syncEvent
	} else if !ok {
		s.spend(&s.eventBytes, len(line))
	}
	err = s.events.write(line)
	if err == nil && flags&syncEvent != 0 {
		err = s.events.sync()
	}
	s.emu.Unlock()
	s.fail(err)
	if full {
		s.truncated("events", why, 0)
	}
}

// truncated notes, once per kind, that a cap was reached: in meta.json,
// events.jsonl (for output) and agent.log.
func (s *sessionRec) truncated(what, why string, process int) {
	s.mu.Lock()
	if slices.Contains(s.meta.Truncated, what) {
		s.mu.Unlock()
		return
	}
	s.meta.Truncated = append(s.meta.Truncated, what)
	s.mu.Unlock()
	s.setFull(why)
	if what == "output" {
		s.event(SessionEvent{Event: SessionEventTruncated, What: what, Process: process, Limit: s.r.maxSession, Detail: why}, syncEvent)
	}
	s.r.log.Warn("a session's recording reached its cap: new commands, file operations and forwards are refused, and terminals and input to running commands ended",
		"session", s.id, "what", what, "detail", why)
	s.r.record(agentlog.Event{Event: eventRecordingTruncated, Session: s.id, Reason: what,
		Detail: why + "; new commands, file operations and forwards are refused, and terminals and input to running commands were ended"})
	s.writeMeta()
}

// setFull fails the session closed, once, because why: nothing more may
// start or move in it (Recordings.Full), since it could not be recorded.
func (s *sessionRec) setFull(why string) {
	msg := "this session's recording is full (" + why + "), and the device lets nothing happen that it cannot record; open a new session"
	s.fullWhy.CompareAndSwap(nil, &msg)
}

func (s *sessionRec) connected(who sessioncert.Claims) {
	now := s.r.now().UTC()
	s.mu.Lock()
	s.meta.Connections++
	n := s.meta.Connections
	s.user = who.User
	seen := slices.ContainsFunc(s.meta.Who, func(e Engineer) bool {
		return e.User == who.User && e.ValidBefore.Equal(who.ValidBefore.UTC())
	})
	if !seen && len(s.meta.Who) < maxEngineers {
		s.meta.Who = append(s.meta.Who, Engineer{User: who.User, ValidAfter: who.ValidAfter.UTC(), ValidBefore: who.ValidBefore.UTC(), Connected: now})
	}
	s.mu.Unlock()
	s.event(SessionEvent{Event: SessionEventConnected, User: who.User, ValidBefore: who.ValidBefore.UTC()}, syncEvent)
	s.writeMeta()
	if ev, ok := logConnection(n, agentlog.Event{Event: eventEngineerConnected, Session: s.id, User: who.User}); ok {
		s.r.record(ev)
	}
}

// maxLoggedConnections bounds the connections of one session that
// agent.log tells of, so that an engineer connecting in a loop cannot fill
// it; events.jsonl, within its cap, has them all.
const maxLoggedConnections = 50

// logConnection is the agent.log line for the session's nth connection or
// disconnection, if it gets one.
func logConnection(n int, ev agentlog.Event) (agentlog.Event, bool) {
	switch {
	case n < maxLoggedConnections:
		return ev, true
	case n == maxLoggedConnections:
		ev.Detail = "further connections of this session are only in its events.jsonl"
		return ev, true
	}
	return ev, false
}

func (s *sessionRec) disconnected(reason string) {
	s.mu.Lock()
	user := s.user
	s.disconnects++
	n := s.disconnects
	s.mu.Unlock()
	s.event(SessionEvent{Event: SessionEventDisconnected, Reason: reason}, syncEvent)
	s.flush()
	s.writeMeta()
	if ev, ok := logConnection(n, agentlog.Event{Event: eventEngineerDisconnected, Session: s.id, User: user, Reason: reason}); ok {
		s.r.record(ev)
	}
}

func (s *sessionRec) process(p agentssh.Process) agentssh.ProcessRecorder {
	s.mu.Lock()
	s.meta.Processes++
	n, user := s.meta.Processes, s.user
	s.mu.Unlock()
	s.event(SessionEvent{Event: SessionEventProcess, Process: n, Channel: p.Channel, Command: p.Command,
		RunAs: p.User, PTY: p.PTY, Term: p.Term, Cols: p.Cols, Rows: p.Rows}, syncEvent)
	return &procRec{s: s, n: n, info: p, user: user}
}

// flush writes out what is buffered and reports whether there was any.
func (s *sessionRec) flush() bool {
	s.mu.Lock()
	files := make([]*lineFile, 0, len(s.casts)+1)
	for f := range s.casts {
		files = append(files, f)
	}
	s.mu.Unlock()
	files = append(files, s.events)
	wrote := false
	for _, f := range files {
		w, err := f.flush()
		wrote = wrote || w
		s.fail(err)
	}
	return wrote
}

// finish ends the recording: the last event, meta.json with the end, and
// agent.log.
func (s *sessionRec) finish(reason control.CloseReason) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	casts := make([]*lineFile, 0, len(s.casts))
	for f := range s.casts {
		casts = append(casts, f)
	}
	s.mu.Unlock()
	for _, f := range casts {
		f.close() // processes the session outlived; their Exited finds it closed
	}
	s.event(SessionEvent{Event: SessionEventEnded, Reason: string(reason)}, syncEvent|forceEvent)
	s.fail(s.events.close())
	s.mu.Lock()
	s.meta.End, s.meta.Reason = s.r.now().UTC(), string(reason)
	s.mu.Unlock()
	s.writeMeta()
	s.r.record(agentlog.Event{Event: eventSessionEnded, Session: s.id, Reason: string(reason), Bytes: dirSize(s.dir)})
}

// writeMeta replaces meta.json with the session as it stands.
func (s *sessionRec) writeMeta() {
	s.mu.Lock()
	s.meta.OutputBytes, s.meta.InputBytes = s.output.Load(), s.input.Load()
	data, err := jsonIndent(&s.meta)
	s.mu.Unlock()
	if err == nil {
		err = agentstate.WriteFileShared(filepath.Join(s.dir, SessionMetaFile), data, s.r.gid)
	}
	s.fail(err)
}

// castExt ends the asciicasts' names.
const castExt = ".cast"

// castName is process n's asciicast.
func castName(n int, pty bool) string {
	kind := "exec"
	if pty {
		kind = "pty"
	}
	return fmt.Sprintf("%04d-%s%s", n, kind, castExt)
}

// procRec records one process. agentssh never calls its methods at the
// same time, so its fields need no lock.
type procRec struct {
	s    *sessionRec
	n    int
	info agentssh.Process
	user string

	cast     *lineFile // nil until the first event
	stopped  bool      // nothing more goes into the cast
	lost     bool      // some of the process's output was not recorded
	in, out  int64
	outText  castText
	inText   castText
	line     []byte
	castFile string
}

func (p *procRec) Output(data []byte) {
	p.out += int64(len(data))
	p.s.output.Add(int64(len(data)))
	if p.stopped {
		p.lost = true
		return
	}
	p.emit("o", p.outText.next(data))
}

func (p *procRec) Input(data []byte) {
	p.in += int64(len(data))
	p.s.input.Add(int64(len(data)))
	if !p.s.r.recordInput || p.stopped {
		return
	}
	p.emit("i", p.inText.next(data))
}

func (p *procRec) Resize(cols, rows int) {
	if !p.stopped {
		p.emit("r", []byte(strconv.Itoa(cols)+"x"+strconv.Itoa(rows)))
	}
}

func (p *procRec) Exited(e agentssh.Exit) {
	if !p.stopped && p.cast != nil {
		if rest := p.outText.flush(); len(rest) > 0 {
			p.emit("o", rest)
		}
		if rest := p.inText.flush(); len(rest) > 0 && p.s.r.recordInput {
			p.emit("i", rest)
		}
	}
	if p.cast != nil {
		p.s.mu.Lock()
		delete(p.s.casts, p.cast)
		p.s.mu.Unlock()
		p.s.fail(p.cast.close())
	}
	status := e.Status
	p.s.event(SessionEvent{Event: SessionEventExit, Process: p.n, Status: &status, Signal: e.Signal, Killed: e.Killed,
		Cast: p.castFile, In: p.in, Out: p.out, DurationMS: e.Took.Milliseconds(), Truncated: p.lost}, 0)
}

// emit appends one event to the process's asciicast, making it first if
// need be, within the session's caps.
func (p *procRec) emit(kind string, data []byte) {
	if len(data) == 0 || p.stopped {
		return
	}
	if p.s.failed.Load() {
		// Nothing more can be written: a command without a terminal that
		// finishes its output has it counted lost, not re-encoded and
		// failed again chunk by chunk.
		p.stopped, p.lost = true, true
		return
	}
	if p.cast == nil && !p.create() {
		return
	}
	p.line = appendCastEvent(p.line[:0], p.s.r.now().Sub(p.info.Start), kind, data)
	if ok, why, lim := p.s.reserve(&p.s.castBytes, p.s.r.maxSession, "max_session", len(p.line)); !ok {
		p.truncate(why, lim)
		return
	}
	p.s.fail(p.cast.write(p.line))
}

// create starts the process's asciicast with its header, unless the
// session's output is already past its cap.
func (p *procRec) create() bool {
	s := p.s
	if s.outputFull.Load() {
		p.stopped, p.lost = true, true
		return false
	}
	h := CastHeader{Version: 2, Width: p.info.Cols, Height: p.info.Rows, Timestamp: p.info.Start.Unix(), Command: p.info.Command}
	if !p.info.PTY || h.Width <= 0 || h.Height <= 0 {
		h.Width, h.Height = castDefaultCols, castDefaultRows
	}
	what := p.info.Command
	if what == "" {
		what = "login shell"
	}
	h.Title = fmt.Sprintf("%s on %s: %s", p.user, s.r.device, what)
	if p.info.Term != "" {
		h.Env = map[string]string{"TERM": p.info.Term}
	}
	header := marshalHeader(h)
	if ok, why, _ := s.reserve(&s.castBytes, s.r.maxSession, "max_session", len(header)); !ok {
		p.stopped, p.lost = true, true
		s.outputFull.Store(true)
		s.truncated("output", why, p.n)
		return false
	}
	name := castName(p.n, p.info.PTY)
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, agentstate.SharedFileMode)
	if err == nil {
		if err = agentstate.ShareFile(f, agentstate.SharedFileMode, s.r.gid); err != nil {
			f.Close()
		}
	}
	if err != nil {
		s.spend(&s.castBytes, -len(header))
		p.stopped = true
		s.fail(fmt.Errorf("making the recording %s: %w", name, err))
		return false
	}
	lf := &lineFile{f: f}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		f.Close()
		s.spend(&s.castBytes, -len(header))
		p.stopped = true
		return false
	}
	s.casts[lf] = struct{}{}
	s.mu.Unlock()
	p.cast, p.castFile = lf, name
	s.fail(lf.write(header))
	return true
}

// truncate ends the asciicast with a marker the replay shows.
func (p *procRec) truncate(why string, limit int64) {
	p.stopped, p.lost = true, true
	p.s.outputFull.Store(true)
	msg := fmt.Sprintf("\r\n[porthole: recording truncated at %v: %s]\r\n", ByteSize(limit), why)
	p.line = appendCastEvent(p.line[:0], p.s.r.now().Sub(p.info.Start), "o", []byte(msg))
	p.s.spend(&p.s.castBytes, len(p.line))
	p.s.fail(p.cast.write(p.line))
	p.s.fail(p.cast.sync())
	p.s.truncated("output", why, p.n)
}

// lineFile is an append-only file written by whole lines through a buffer.
type lineFile struct {
	mu  sync.Mutex
	f   *os.File // guarded by mu; nil once closed
	buf []byte   // guarded by mu
}

// flushSize is the buffer's size: a full buffer is written at once.
const flushSize = 64 << 10

func (l *lineFile) write(line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errRecordingClosed
	}
	l.buf = append(l.buf, line...)
	if len(l.buf) >= flushSize {
		return l.flushLocked()
	}
	return nil
}

func (l *lineFile) flushLocked() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.f.Write(l.buf)
	l.buf = l.buf[:0]
	if cap(l.buf) > 4*flushSize {
		l.buf = nil // one huge chunk should not stay allocated
	}
	return err
}

// flush writes the buffer out; it reports whether there was anything.
func (l *lineFile) flush() (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || len(l.buf) == 0 {
		return false, nil
	}
	return true, l.flushLocked()
}

func (l *lineFile) sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errRecordingClosed
	}
	if err := l.flushLocked(); err != nil {
		return err
	}
	return l.f.Sync()
}

// close writes out, syncs and closes the file; closing it again does
// nothing.
func (l *lineFile) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := errors.Join(l.flushLocked(), l.f.Sync(), l.f.Close())
	l.f = nil
	return err
}

// jsonLine is v as one line of JSON.
func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(b, '\n'), err
}

// jsonIndent is v as indented JSON, for files people open.
func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}

// readMeta reads a session directory's meta.json.
func readMeta(dir string) (*SessionMeta, error) {
	data, err := os.ReadFile(filepath.Join(dir, SessionMetaFile))
	if err != nil {
		return nil, err
	}
	var m SessionMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, SessionMetaFile), err)
	}
	return &m, nil
}
