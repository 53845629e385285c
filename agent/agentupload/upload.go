package agentupload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/agent/agentretry"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/internal/atomicfile"
	"github.com/porthole/porthole/proxydial"
)

// Server is the server as the uploader reaches it, with the device's
// own credential; *apiclient.Client is one.
type Server interface {
	UploadRecordingFile(ctx context.Context, session, name string, offset int64, data []byte) (int64, error)
	CompleteRecording(ctx context.Context, session string, files map[string]int64) (*apitype.Recording, error)
	OwnerLink(ctx context.Context) (*apitype.OwnerLink, error)
}

var _ Server = (*apiclient.Client)(nil)

// Options are the inputs of New.
type Options struct {
	// State is the enrolled device: its state directory holds the
	// recordings, and its enrollment names the server. Required.
	State *agentstate.State
	// Server receives the recordings. Nil: the enrollment's server,
	// reached with the device's key, by NetDial.
	Server Server
	// NetDial reaches the enrollment's server when Server is nil. Nil:
	// through the proxy the environment names (HTTPS_PROXY), if one
	// applies; the agent passes agent.Config.NetDial.
	NetDial proxydial.DialFunc
	// Logger gets what could not be sent and why. Nil: nothing is logged.
	Logger *slog.Logger
	// Backoff bounds the waits after a failure to reach the server. Zero:
	// from 2 s up to 5 min.
	Backoff agentretry.Backoff
	// Every is the least time between two passes over the recordings, so
	// that a busy session is sent in a few chunks a pass rather than a
	// chunk a line. Zero: 2 s.
	Every time.Duration
	// RescanEvery is how often every session is looked at, in case a
	// change was missed. Zero: 10 min.
	RescanEvery time.Duration
	// ChunkSize bounds one upload's bytes. Zero: 1 MiB.
	ChunkSize int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultEvery      = 2 * time.Second
	DefaultRescan     = 10 * time.Minute
	DefaultChunk      = 1 << 20
	defaultBackoffMax = 5 * time.Minute
)

// Uploader sends the recordings to the server; see the package comment. Make it
// with New before agentrecord.Open, so that its Changed can be the
// recordings' hook, and Start it once they are open.
type Uploader struct {
	stateDir    string
	server      Server
	serverURL   string
	fingerprint string
	log         *slog.Logger
	backoff     agentretry.Backoff
	every       time.Duration
	rescan      time.Duration
	chunk       int
	now         func() time.Time
	gid         int

	wake chan struct{} // 1-buffered: something is pending

	mu      sync.Mutex
	pending map[string]bool // guarded by mu: sessions to look at
}

// New checks opts; nothing is sent before Start.
func New(opts Options) (*Uploader, error) {
	if opts.State == nil {
		return nil, errors.New("agentupload: the uploader needs the device's state")
	}
	enr := opts.State.Enrollment
	u := &Uploader{stateDir: opts.State.Dir, server: opts.Server, serverURL: enr.Server, fingerprint: enr.Fingerprint,
		log: opts.Logger, every: opts.Every, rescan: opts.RescanEvery, chunk: opts.ChunkSize, now: opts.Now,
		gid: agentstate.OwnerGID(), wake: make(chan struct{}, 1), pending: map[string]bool{}}
	if u.server == nil {
		c, err := apiclient.New(enr.Server, apiclient.Options{Fingerprint: enr.Fingerprint, Timeout: time.Minute, NetDial: opts.NetDial,
			Device: &apiclient.DeviceCredentials{Fleet: enr.Fleet, Device: enr.Name, Key: opts.State.PrivateKey}})
		if err != nil {
			return nil, fmt.Errorf("the enrollment record's server: %w", err)
		}
		u.server = c
	}
	if opts.Backoff.Max == 0 {
		opts.Backoff.Max = defaultBackoffMax
	}
	var err error
	if u.backoff, err = opts.Backoff.WithDefaults(); err != nil {
		return nil, err
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	u.log = u.log.With("component", "upload")
	if u.every <= 0 {
		u.every = DefaultEvery
	}
	if u.rescan <= 0 {
		u.rescan = DefaultRescan
	}
	if u.chunk <= 0 {
		u.chunk = DefaultChunk
	}
	if u.now == nil {
		u.now = time.Now
	}
	return u, nil
}

// Changed marks a session to be sent; it never blocks. It is
// agentrecord.Options.Changed.
func (u *Uploader) Changed(session string) {
	u.mu.Lock()
	u.pending[session] = true
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Start sends the recordings, and keeps the owner's link fresh (see
// RenewOwnerLink), until ctx ends or stop is called; stop waits for it.
func (u *Uploader) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { u.run(ctx) })
	wg.Go(func() { u.keepOwnerLink(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// run sends what is pending, pass after pass, until ctx ends.
func (u *Uploader) run(ctx context.Context) {
	u.markAll()
	lastScan := u.now()
	attempt := 0
	for {
		err := u.pass(ctx)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			wait = u.backoff.Delay(attempt, rand.Float64())
			attempt++
			u.log.Warn("cannot send recordings to the server; trying again later", "in", wait.Round(time.Second), "err", err)
		} else {
			attempt = 0
			if !u.anyPending() {
				// Nothing to do until the recorder says so, or the rescan.
				t := time.NewTimer(u.rescan - min(u.now().Sub(lastScan), u.rescan))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-u.wake:
				case <-t.C:
					u.markAll()
					lastScan = u.now()
				}
				t.Stop()
			}
			wait = u.every
		}
		if !sleepFor(ctx, wait) {
			return
		}
	}
}

// sleepFor waits d; false if ctx ended first.
func sleepFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (u *Uploader) anyPending() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.pending) > 0
}

// markAll marks every recorded session, and clears what an interrupted
// write of upload.json left.
func (u *Uploader) markAll() {
	ents, err := os.ReadDir(filepath.Join(u.stateDir, agentrecord.SessionsDir))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			u.log.Error("reading the recordings", "err", err)
		}
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			atomicfile.RemoveTemps(filepath.Join(u.stateDir, agentrecord.SessionsDir, e.Name(), agentrecord.SessionUploadFile))
			u.pending[e.Name()] = true
		}
	}
}

// pass sends every pending session, oldest name first. At the first
// failure to reach the server it stops, leaving it and the rest pending.
func (u *Uploader) pass(ctx context.Context) error {
	u.mu.Lock()
	ids := make([]string, 0, len(u.pending))
	for id := range u.pending {
		ids = append(ids, id)
	}
	clear(u.pending)
	u.mu.Unlock()
	slices.Sort(ids)
	for i, id := range ids {
		if err := u.session(ctx, id); err != nil {
			u.mu.Lock()
			for _, rest := range ids[i:] {
				u.pending[rest] = true
			}
			u.mu.Unlock()
			return err
		}
	}
	return nil
}

// uploadProgress is a session's upload.json: what the server holds.
type uploadProgress struct {
	// Meta is the SHA-256 of the meta.json the server holds.
	Meta string `json:"meta,omitempty"`
	// Files are the bytes the server holds of each other file.
	Files map[string]int64 `json:"files"`
	// Refused are files the server took no more of, and why.
	Refused map[string]string `json:"refused,omitempty"`
	// Gone says why the server takes nothing of this session.
	Gone string `json:"gone,omitempty"`
	// Complete: the server was told everything was sent.
	Complete bool      `json:"complete,omitempty"`
	Updated  time.Time `json:"updated,omitzero"`
}

// readProgress reads upload.json; one that cannot be read is no progress:
// everything is sent again, and the server answers what it holds.
func readProgress(dir string) *uploadProgress {
	p := &uploadProgress{}
	data, err := os.ReadFile(filepath.Join(dir, agentrecord.SessionUploadFile))
	if err == nil {
		err = json.Unmarshal(data, p)
	}
	if err != nil {
		p = &uploadProgress{}
	}
	if p.Files == nil {
		p.Files = map[string]int64{}
	}
	if p.Refused == nil {
		p.Refused = map[string]string{}
	}
	return p
}

func (u *Uploader) saveProgress(dir string, p *uploadProgress) error {
	p.Updated = u.now().UTC()
	data, err := jsonIndent(p)
	if err != nil {
		return err
	}
	if err := agentstate.WriteFileShared(filepath.Join(dir, agentrecord.SessionUploadFile), data, u.gid); errors.Is(err, fs.ErrNotExist) {
		return nil // deleted by retention meanwhile
	} else if err != nil {
		return fmt.Errorf("saving the upload's progress: %w", err)
	}
	return nil
}

// errRetry is a failure to reach the server, or an answer that may change:
// the session stays pending.
type errRetry struct{ err error }

func (e *errRetry) Error() string { return e.err.Error() }
func (e *errRetry) Unwrap() error { return e.err }

// session sends what the server lacks of one session, and completes it
// when it has ended and everything is sent. Only failures worth another
// try come back.
func (u *Uploader) session(ctx context.Context, id string) error {
	dir := agentrecord.SessionPath(u.stateDir, id)
	if dir == "" {
		return nil
	}
	log := u.log.With("session", id)
	p := readProgress(dir)
	if p.Gone != "" {
		return nil
	}
	meta, err := os.ReadFile(filepath.Join(dir, agentrecord.SessionMetaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted, or not begun
	} else if err != nil {
		log.Error("reading meta.json", "err", err)
		return nil
	}
	var m agentrecord.SessionMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		log.Error("meta.json is damaged; not sent", "err", err)
		return nil
	}

	sum := sha256.Sum256(meta)
	if h := hex.EncodeToString(sum[:]); h != p.Meta {
		if _, err := u.server.UploadRecordingFile(ctx, id, agentrecord.SessionMetaFile, 0, meta); err != nil {
			if err := u.refused(dir, p, agentrecord.SessionMetaFile, err, log); err != nil || p.Gone != "" {
				return err
			}
		}
		p.Meta, p.Complete = h, false
		if err := u.saveProgress(dir, p); err != nil {
			return err
		}
	}

	sizes := map[string]int64{agentrecord.SessionMetaFile: int64(len(meta))}
	for _, name := range uploadFiles(dir) {
		size, err := u.file(ctx, dir, id, name, p, log)
		if err != nil {
			return err
		}
		sizes[name] = size
		if p.Gone != "" {
			return nil
		}
	}
	if m.End.IsZero() || p.Complete {
		return nil
	}
	if _, err := u.server.CompleteRecording(ctx, id, sizes); err != nil {
		return u.refused(dir, p, "", err, log)
	}
	p.Complete = true
	log.Info("the session's recording is on the server", "files", len(sizes), "refused", len(p.Refused))
	return u.saveProgress(dir, p)
}

// uploadFiles are the files of a session's directory that are sent in
// chunks: events.jsonl, then the asciicasts in process order.
func uploadFiles(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var casts []agentrecord.CastInfo
	names := []string{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if e.Name() == agentrecord.SessionEventsFile {
			names = append(names, e.Name())
		} else if c, ok := agentrecord.ParseCastName(e.Name()); ok {
			casts = append(casts, c)
		}
	}
	slices.SortFunc(casts, func(a, b agentrecord.CastInfo) int { return a.Process - b.Process })
	for _, c := range casts {
		names = append(names, c.File)
	}
	return names
}

// file sends what the server lacks of one append-only file and returns
// its size on the device.
func (u *Uploader) file(ctx context.Context, dir, id, name string, p *uploadProgress, log *slog.Logger) (int64, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		log.Error("reading a recording", "file", name, "err", err)
		return 0, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, nil
	}
	size := fi.Size()
	if _, refused := p.Refused[name]; refused {
		return size, nil
	}
	off := p.Files[name]
	if off > size {
		off = 0 // not what was sent: start again, and the server says what it has
	}
	buf := make([]byte, min(int64(u.chunk), max(size-off, 0)))
	for off < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			log.Error("reading a recording", "file", name, "err", err)
			return size, nil
		}
		held, err := u.server.UploadRecordingFile(ctx, id, name, off, buf[:n])
		var gap *apiclient.UploadOffsetError
		switch {
		case errors.As(err, &gap):
			held = gap.Size
		case err != nil:
			return size, u.refused(dir, p, name, err, log)
		}
		if held > size {
			p.Refused[name] = fmt.Sprintf("the server holds %d bytes of it, more than the %d here", held, size)
			log.Error("the server holds more of a recording than the device", "file", name, "server", held, "device", size)
			return size, u.saveProgress(dir, p)
		}
		off = held
		p.Files[name] = off
		if err := u.saveProgress(dir, p); err != nil {
			return size, err
		}
	}
	return size, nil
}

// refused sorts a failed upload: the server refusing a file (name) or the
// whole session for good is noted in upload.json and not tried again;
// anything else, a server without uploads (an unknown path) too, is tried
// again later.
func (u *Uploader) refused(dir string, p *uploadProgress, name string, err error, log *slog.Logger) error {
	var ae *apiclient.Error
	if !errors.As(err, &ae) {
		return &errRetry{err}
	}
	switch {
	case ae.Code == apitype.CodeUnknownSession:
		p.Gone = ae.Message
		log.Warn("the server takes nothing of this session", "reason", ae.Message)
	case ae.Status == http.StatusRequestEntityTooLarge, ae.Status == http.StatusConflict, ae.Status == http.StatusBadRequest:
		if name == "" {
			log.Error("the server refused to complete the recording", "reason", ae.Message)
			p.Complete = true // nothing more to send; the server says why
			break
		}
		p.Refused[name] = ae.Message
		log.Warn("the server takes no more of a recording's file", "file", name, "reason", ae.Message)
	default:
		return &errRetry{err}
	}
	return u.saveProgress(dir, p)
}

// jsonIndent is v as indented JSON, for files people open.
func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}
