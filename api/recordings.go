package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/recstore"
	"github.com/porthole/porthole/store"
)

// The server's copy of the recordings devices make of their sessions. A
// device uploads the files of its own sessions only (see apitype's upload
// protocol); fleet auditors and up read them, and so does the device's
// owner through an owner link (owner.go). A recstore.Store keeps the
// bytes: on disk, Dir/<fleet ID>/<session ID>/<name> (files 0600,
// directories 0700), or in S3-compatible object storage shared by every
// server node (recstore/s3store); the store keeps their sizes, and the
// audit log the completed uploads.
//
// What a device sends is checked as far as the server can: only the file
// names the agent's recorder gives, only at the size the server holds
// (bytes sent again must be the bytes stored, so an upload cannot rewrite
// what the server already has), and within caps per file and per session,
// so that a device cannot fill the server's disk.

// RecordingsConfig says where the server keeps uploaded recordings and how
// much of them it takes. The zero value takes none: uploads are answered
// 503 until Dir is set.
type RecordingsConfig struct {
	// Store keeps the recordings' bytes. Nil: a recstore.Dir at Dir.
	Store recstore.Store
	// Dir holds the recordings' bytes when Store is nil; it is made
	// (0700) when missing. Both empty: the server keeps no recordings.
	Dir string
	// MaxFile caps one file of a recording. Zero:
	// DefaultRecordingMaxFile, the agent's own cap on a session's output
	// with room for its truncation marker.
	MaxFile int64
	// MaxSession caps one session's files together. Zero:
	// DefaultRecordingMaxSession, the agent's caps on output and events
	// together, with room to spare.
	MaxSession int64
	// MaxFiles caps how many files one session may have. Zero:
	// DefaultRecordingMaxFiles.
	MaxFiles int
}

// Defaults of RecordingsConfig: the agent's default caps (64 MiB of
// output and 16 MiB of events per session) are the most a device sends.
const (
	DefaultRecordingMaxFile    = 64<<20 + 64<<10
	DefaultRecordingMaxSession = 64<<20 + 16<<20 + 1<<20
	DefaultRecordingMaxFiles   = 10000
)

// Bounds of one upload.
const (
	maxUploadChunk = 4 << 20   // bytes of one PUT
	maxMetaFile    = 256 << 10 // meta.json, which is a few KiB
)

// Names of a recording's files, as the agent's recorder makes them.
const (
	recMetaFile   = "meta.json"
	recEventsFile = "events.jsonl"
)

// The recording routes' file wildcard, for the OpenAPI document.
func init() {
	pathParamDocs["name"] = "a file of a session's recording: meta.json, events.jsonl, NNNN-pty.cast or NNNN-exec.cast"
}

var castFileName = regexp.MustCompile(`^[0-9]{4,9}-(pty|exec)\.cast$`)

// validRecordingName reports whether name is a file the recorder makes.
func validRecordingName(name string) bool {
	return name == recMetaFile || name == recEventsFile || castFileName.MatchString(name) && !strings.HasPrefix(name, "0000-")
}

// recordingDisk keeps the recordings' bytes, within the caps.
type recordingDisk struct {
	cfg   RecordingsConfig
	store recstore.Store // nil: the server keeps no recordings
}

func newRecordingDisk(cfg RecordingsConfig) *recordingDisk {
	cfg.MaxFile = orDefault(cfg.MaxFile, DefaultRecordingMaxFile)
	cfg.MaxSession = orDefault(cfg.MaxSession, DefaultRecordingMaxSession)
	cfg.MaxFiles = orDefault(cfg.MaxFiles, DefaultRecordingMaxFiles)
	d := &recordingDisk{cfg: cfg, store: cfg.Store}
	if d.store == nil && cfg.Dir != "" {
		d.store = &recstore.Dir{Root: cfg.Dir}
	}
	return d
}

// errNoRecordings answers when the server keeps no recordings.
var errNoRecordings = errorf(http.StatusServiceUnavailable, apitype.CodeUnavailable,
	"this server keeps no recordings (its recordings_dir is not set)")

// key names a session's recording in the store.
func (d *recordingDisk) key(ses *store.Session) (recstore.Key, error) {
	if d.store == nil {
		return recstore.Key{}, errNoRecordings
	}
	k := recstore.Key{Fleet: ses.FleetID, Session: ses.ID}
	if !recstore.ValidKey(k) {
		return k, fmt.Errorf("session %q of fleet %q cannot name a recording", ses.ID, ses.FleetID)
	}
	return k, nil
}

// delete removes a session's recording under its upload lock, so that an
// upload in flight cannot make its directory again after it. A server that
// keeps no recordings has none to remove.
func (d *recordingDisk) delete(ctx context.Context, ses *store.Session) error {
	if d.store == nil {
		return nil
	}
	key, err := d.key(ses)
	if err != nil {
		return err
	}
	unlock, err := d.store.Lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	return d.store.Delete(ctx, key)
}

// offsetError refuses a chunk that starts past the file's size.
type offsetError struct{ size int64 }

func (e *offsetError) Error() string {
	return fmt.Sprintf("the server holds %d bytes of this file; send from there", e.size)
}

// put stores a chunk of name at offset (meta.json: the whole file) under
// the session's lock and returns the file's size after it.
func (d *recordingDisk) put(ctx context.Context, st store.Store, ses *store.Session, name string, offset int64, data []byte, now time.Time) (int64, error) {
	key, err := d.key(ses)
	if err != nil {
		return 0, err
	}
	unlock, err := d.store.Lock(ctx, key)
	if err != nil {
		return 0, err
	}
	defer unlock()
	var files int
	var total int64
	switch rec, err := st.ListRecordings(ctx, store.RecordingFilter{SessionIDs: []string{ses.ID}}); {
	case err != nil:
		return 0, fmt.Errorf("reading the recording's sizes: %w", err)
	case len(rec) == 1:
		files, total = rec[0].FileCount, rec[0].Bytes
	}
	cur, err := d.store.Size(ctx, key, name)
	if err != nil {
		return 0, err
	}
	if cur == 0 && files+1 > d.cfg.MaxFiles {
		return 0, errorf(http.StatusRequestEntityTooLarge, apitype.CodeTooLarge,
			"the server keeps at most %d files of one session's recording", d.cfg.MaxFiles)
	}

	if name == recMetaFile {
		if !json.Valid(data) {
			return 0, badRequest("meta.json must be a JSON object")
		}
		if int64(len(data)) > maxMetaFile || total-cur+int64(len(data)) > d.cfg.MaxSession {
			return 0, tooLarge(d.cfg, "meta.json")
		}
		if err := d.store.Replace(ctx, key, name, data); err != nil {
			return 0, err
		}
		return int64(len(data)), st.PutRecordingFile(ctx, ses.ID, name, int64(len(data)), now)
	}

	if offset > cur {
		return 0, &offsetError{size: cur}
	}
	end := offset + int64(len(data))
	// Bytes sent again must be the ones stored: what the server holds
	// cannot be rewritten by a later upload.
	if overlap := min(end, cur) - offset; overlap > 0 {
		held := make([]byte, overlap)
		if err := d.store.ReadAt(ctx, key, name, held, offset); err != nil {
			return 0, err
		}
		if !bytes.Equal(held, data[:overlap]) {
			return 0, errorf(http.StatusConflict, apitype.CodeUploadMismatch,
				"bytes %d to %d of %s differ from those the server already holds; an uploaded recording cannot be changed", offset, offset+overlap, name)
		}
	}
	if end <= cur {
		return cur, st.PutRecordingFile(ctx, ses.ID, name, cur, now) // keeps the store in step after a crash
	}
	if end > d.cfg.MaxFile || total+(end-cur) > d.cfg.MaxSession {
		return 0, tooLarge(d.cfg, name)
	}
	if err := d.store.Append(ctx, key, name, cur, data[cur-offset:]); errors.Is(err, recstore.ErrOffsetTaken) {
		// Another upload of this file wrote there meanwhile, through a
		// node that lost the session's lock: sent again, the chunk is
		// checked against what that upload left.
		return 0, errorf(http.StatusServiceUnavailable, apitype.CodeUnavailable,
			"another upload of %s wrote at byte %d meanwhile; send the chunk again", name, cur)
	} else if err != nil {
		return 0, err
	}
	return end, st.PutRecordingFile(ctx, ses.ID, name, end, now)
}

func tooLarge(cfg RecordingsConfig, name string) error {
	return errorf(http.StatusRequestEntityTooLarge, apitype.CodeTooLarge,
		"%s would pass this server's caps on recordings (%s a file, %s a session); the rest of it is not kept",
		name, mib(cfg.MaxFile), mib(cfg.MaxSession))
}

// mib writes a size in MiB for people.
func mib(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', -1, 64) + " MiB"
}

// streamed makes an endpoint that reads its request body or writes its
// answer itself (bytes, not JSON), after the route's authentication, as
// JSON endpoints have it; body says what it reads and answers. fn answers
// on success; its error is answered as a JSON endpoint's would be.
func (s *Server) streamed(body rawBody, fn func(*call) error) endpoint {
	return endpoint{body: body, raw: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := slices.IndexFunc(s.routes, func(rt route) bool { return rt.pattern() == r.Pattern })
		if i < 0 {
			s.writeError(w, r, fmt.Errorf("no route has the pattern %q", r.Pattern))
			return
		}
		rt := s.routes[i]
		rt.ep = endpoint{serve: func(c *call) (any, error) { return nil, fn(c) }}
		c := &call{s: s, w: w, r: r, ctx: r.Context(), route: &rt}
		if _, err := c.run(); err != nil {
			s.writeError(w, r, err)
		}
	})}
}

// deviceSession finds a session of the calling device. Another device's
// session answers as a missing one does.
func (c *call) deviceSession(id string) (*store.Session, error) {
	missing := errorf(http.StatusNotFound, apitype.CodeUnknownSession, "device %s has no session %q on this server", c.dev.Name, id)
	ses, err := c.s.store.GetSession(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing
	} else if err != nil {
		return nil, fmt.Errorf("looking up session %q: %w", id, err)
	}
	if ses.DeviceID != c.dev.ID {
		c.s.logger.Warn("a device reached for another device's session", "request_id", requestID(c.ctx),
			"fleet", c.dev.FleetName, "device", c.dev.Name, "session", ses.ID, "route", c.route.pattern())
		return nil, missing
	}
	return ses, nil
}

// uploadBody is what PUT /api/v1/device/sessions/{id}/files/{name} reads
// and answers: the chunk's bytes in, the size the server holds out, on a
// gap too.
var uploadBody = rawBody{request: "application/octet-stream", answers: []rawAnswer{
	{status: http.StatusOK, about: "the chunk is held: the size of the file on the server", json: []reflect.Type{reflect.TypeFor[apitype.UploadResult]()}},
	{status: http.StatusConflict, about: "upload_offset: the chunk starts past the bytes held, send from size; " +
		"upload_mismatch (an error body): it differs from bytes held, which cannot be rewritten",
		json: []reflect.Type{reflect.TypeFor[apitype.UploadError](), reflect.TypeFor[apitype.ErrorBody]()}},
}}

// The content types a recording's files are served with: meta.json,
// events.jsonl (a JSON value a line) and the asciicasts.
const (
	recMetaType   = "application/json"
	recEventsType = "application/jsonl"
	recCastType   = "application/x-asciicast"
)

// recordingFileBody is what the routes reading one file of a recording
// answer: its bytes as the device uploaded them, whole or the range asked
// for.
var recordingFileBody = func() rawBody {
	types := []string{recMetaType, recEventsType, recCastType}
	return rawBody{answers: []rawAnswer{
		{status: http.StatusOK, about: "the file, as uploaded", types: types, bytes: true},
		{status: http.StatusPartialContent, about: "the range of the file the Range header asked for", types: types, bytes: true},
	}}
}()

// uploadRecordingFile is PUT /api/v1/device/sessions/{id}/files/{name}:
// a chunk of a file of the calling device's session (see apitype's upload
// protocol).
func (s *Server) uploadRecordingFile(c *call) error {
	ses, err := c.deviceSession(c.r.PathValue("id"))
	if err != nil {
		return err
	}
	name := c.r.PathValue("name")
	if !validRecordingName(name) {
		return badRequest("%q is not a file of a recording: meta.json, events.jsonl, or NNNN-pty.cast and NNNN-exec.cast", name)
	}
	var offset int64
	v := c.r.URL.Query().Get("offset")
	switch {
	case name == recMetaFile && v != "" && v != "0":
		return badRequest("meta.json is sent whole; leave out offset")
	case name != recMetaFile && v == "":
		return badRequest("offset is required: the byte of %s this chunk starts at", name)
	case v != "":
		if offset, err = strconv.ParseInt(v, 10, 64); err != nil || offset < 0 {
			return badRequest("offset=%q is not a byte offset", v)
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxUploadChunk))
	var tooBig *http.MaxBytesError
	var he *httpError
	if errors.As(err, &he) { // the body's reader answered it (a body not the one signed)
		return he
	} else if errors.As(err, &tooBig) {
		return errorf(http.StatusRequestEntityTooLarge, apitype.CodeTooLarge, "a chunk is at most %s; send smaller ones", mib(maxUploadChunk))
	} else if err != nil {
		return badRequest("reading the chunk: %s", err)
	}
	size, err := s.recDisk.put(c.ctx, s.store, ses, name, offset, data, s.now())
	var gap *offsetError
	if errors.As(err, &gap) {
		writeJSON(c.w, http.StatusConflict, apitype.UploadError{Size: gap.size,
			Error: apitype.ErrorDetail{Code: apitype.CodeUploadOffset, Message: fmt.Sprintf(
				"%s starts at byte %d, but the server holds %d bytes of it; send from byte %d", name, offset, gap.size, gap.size)}})
		return nil
	} else if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, apitype.UploadResult{Size: size})
	return nil
}

// completeRecording is POST /api/v1/device/sessions/{id}/recording/complete.
func (s *Server) completeRecording(c *call, req *apitype.CompleteRecordingRequest) (apitype.Recording, error) {
	ses, err := c.deviceSession(c.r.PathValue("id"))
	if err != nil {
		return apitype.Recording{}, err
	}
	if len(req.Files) > s.recDisk.cfg.MaxFiles {
		return apitype.Recording{}, badRequest("a recording has at most %d files, not %d", s.recDisk.cfg.MaxFiles, len(req.Files))
	}
	for name, size := range req.Files {
		if !validRecordingName(name) || size < 0 {
			return apitype.Recording{}, badRequest("%q (%d bytes) is not a file of a recording", name, size)
		}
	}
	rec, err := s.store.GetRecording(c.ctx, ses.ID)
	if errors.Is(err, store.ErrNotFound) {
		return apitype.Recording{}, conflict("nothing of session %s was uploaded; send its files first", ses.ID)
	} else if err != nil {
		return apitype.Recording{}, fmt.Errorf("reading the recording of %s: %w", ses.ID, err)
	}
	held := map[string]int64{}
	for _, f := range rec.Files {
		held[f.Name] = f.Size
	}
	var short []string
	for name, size := range req.Files {
		if held[name] < size {
			short = append(short, fmt.Sprintf("%s (%d of %d bytes)", name, held[name], size))
		}
	}
	slices.Sort(short)
	ev := audit.Event{Kind: audit.RecordingUploaded, Actor: audit.Device(c.dev.ID, c.dev.FleetName, c.dev.Name),
		Detail: map[string]string{"files": strconv.Itoa(rec.FileCount), "bytes": strconv.FormatInt(rec.Bytes, 10),
			"cut_short": strings.Join(short, ", "), "remote": clientAddr(c.r)}}
	done, _, err := s.store.CompleteRecording(store.WithAudit(c.ctx, ev), ses.ID, s.now())
	if err != nil {
		return apitype.Recording{}, fmt.Errorf("completing the recording of %s: %w", ses.ID, err)
	}
	done.Files = rec.Files
	return apiRecording(ses, done), nil
}

// recordedSession finds a session for the engineers' recording routes and
// checks the caller's role in its fleet. It reads the store itself, so
// the recordings can be read on a server that opens no sessions.
func (c *call) recordedSession(id string) (*store.Session, error) {
	missing := notFound("there is no session %q in your fleets", id)
	ses, err := c.s.store.GetSession(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing
	} else if err != nil {
		return nil, fmt.Errorf("looking up session %q: %w", id, err)
	}
	if _, err := c.authorize(&store.Fleet{ID: ses.FleetID, Name: ses.FleetName}, missing); err != nil {
		return nil, err
	}
	return ses, nil
}

// getRecording is GET /api/v1/sessions/{id}/recording.
func (s *Server) getRecording(c *call, _ *none) (apitype.Recording, error) {
	ses, err := c.recordedSession(c.r.PathValue("id"))
	if err != nil {
		return apitype.Recording{}, err
	}
	return s.recordingOf(c, ses)
}

// recordingOf is a session's recording with its files; nothing uploaded
// yet is a recording without files.
func (s *Server) recordingOf(c *call, ses *store.Session) (apitype.Recording, error) {
	rec, err := s.store.GetRecording(c.ctx, ses.ID)
	if errors.Is(err, store.ErrNotFound) {
		out := apiRecording(ses, nil)
		out.Files = []apitype.RecordingFile{}
		return out, nil
	} else if err != nil {
		return apitype.Recording{}, fmt.Errorf("reading the recording of %s: %w", ses.ID, err)
	}
	return apiRecording(ses, rec), nil
}

// getRecordingFile is GET /api/v1/sessions/{id}/recording/files/{name}.
func (s *Server) getRecordingFile(c *call) error {
	ses, err := c.recordedSession(c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.recDisk.serve(c, ses, c.r.PathValue("name"))
}

// serve answers the bytes of one file of a session's recording, with
// ranges.
func (d *recordingDisk) serve(c *call, ses *store.Session, name string) error {
	if !validRecordingName(name) {
		return notFound("a recording has no file %q: its files are meta.json, events.jsonl, and NNNN-pty.cast and NNNN-exec.cast", name)
	}
	key, err := d.key(ses)
	if err != nil {
		return err
	}
	f, err := d.store.Open(c.ctx, key, name)
	if errors.Is(err, recstore.ErrNotExist) {
		return notFound("session %s has no %s on the server (yet)", ses.ID, name)
	} else if err != nil {
		return err
	}
	defer f.Close()
	h := c.w.Header()
	switch {
	case name == recMetaFile:
		h.Set("Content-Type", recMetaType)
	case name == recEventsFile:
		h.Set("Content-Type", recEventsType)
	default:
		h.Set("Content-Type", recCastType)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", ses.ID+"-"+name))
	http.ServeContent(c.w, c.r, name, f.ModTime(), f)
	return nil
}

// listRecordings is GET /api/v1/recordings: the recordings of sessions in
// the caller's fleets, without their files, newest session first.
func (s *Server) listRecordings(c *call, _ *none) ([]apitype.Recording, error) {
	q := c.r.URL.Query()
	f := store.RecordingFilter{Limit: 100}
	var err error
	if f.FleetIDs, f.DeviceID, err = c.listScope(); err != nil {
		return nil, err
	}
	if ids, ok := q["session"]; ok {
		if len(ids) > 100 {
			return nil, badRequest("ask for at most 100 sessions at once, not %d", len(ids))
		}
		f.SessionIDs = ids
	}
	recs, err := s.store.ListRecordings(c.ctx, f)
	if err != nil {
		return nil, fmt.Errorf("listing recordings: %w", err)
	}
	return s.withSessions(c, recs)
}

// withSessions pairs recordings with their sessions.
func (s *Server) withSessions(c *call, recs []*store.Recording) ([]apitype.Recording, error) {
	out := make([]apitype.Recording, 0, len(recs))
	for _, r := range recs {
		ses, err := s.store.GetSession(c.ctx, r.SessionID)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since
		} else if err != nil {
			return nil, fmt.Errorf("looking up session %s: %w", r.SessionID, err)
		}
		out = append(out, apiRecording(ses, r))
	}
	return out, nil
}

// apiRecording is a session's recording on the wire; rec nil is nothing
// uploaded yet.
func apiRecording(ses *store.Session, rec *store.Recording) apitype.Recording {
	out := apitype.Recording{Session: apiSession(ses)}
	if rec == nil {
		return out
	}
	out.FileCount, out.Bytes, out.Complete = rec.FileCount, rec.Bytes, rec.Complete()
	out.StartedAt, out.UpdatedAt, out.CompletedAt = rec.StartedAt, rec.UpdatedAt, rec.CompletedAt
	if rec.Files != nil {
		out.Files = make([]apitype.RecordingFile, len(rec.Files))
		for i, f := range rec.Files {
			out.Files[i] = apitype.RecordingFile{Name: f.Name, Size: f.Size, UpdatedAt: f.UpdatedAt}
		}
	}
	return out
}
