package apitype

import "time"

// Upload of recordings, device → server:
//
//	PUT  /api/v1/device/sessions/{id}/files/meta.json           the whole file, replaced
//	PUT  /api/v1/device/sessions/{id}/files/{name}?offset=N     bytes from N on
//	POST /api/v1/device/sessions/{id}/recording/complete         CompleteRecordingRequest
//
// Files other than meta.json only grow, so a device sends each as chunks
// appended at the size the server holds: a chunk sent again is answered
// with that size (UploadResult), after the server checked that the bytes
// are the ones it has; a chunk past it (a gap) is refused with 409
// CodeUploadOffset and the size to resume from in UploadError. Once the
// session ended and every file is sent, the device completes the
// recording, which the audit log records.

// Codes of refused uploads, besides CodeTooLarge (a cap of the server's).
const (
	// CodeUploadOffset: the chunk does not start at or before the file's
	// size on the server; UploadError.Size says where to resume.
	CodeUploadOffset = "upload_offset"
	// CodeUploadMismatch: a chunk sent again differs from the bytes the
	// server already holds there; uploaded recordings cannot be rewritten.
	CodeUploadMismatch = "upload_mismatch"
	// CodeUnknownSession (404): the server has no session of this ID on
	// the calling device; nothing of it will be taken.
	CodeUnknownSession = "unknown_session"
)

// UploadResult answers a stored chunk: the file's size on the server.
type UploadResult struct {
	Size int64 `json:"size"`
}

// UploadError is the body of a refused chunk: ErrorBody with, for
// CodeUploadOffset, the file's size on the server.
type UploadError struct {
	Error ErrorDetail `json:"error"`
	Size  int64       `json:"size"`
}

// CompleteRecordingRequest is POST .../recording/complete: the size of
// each file of the session's recording on the device as it finished.
// Files the server holds less of (its caps stopped them) are named in the
// audit event.
type CompleteRecordingRequest struct {
	Files map[string]int64 `json:"files"`
}

// Recording is what the server holds of a session's recording.
type Recording struct {
	Session Session `json:"session"`
	// Files are the uploaded files by name: meta.json (who came, when,
	// why it ended), events.jsonl (one event a line: connections,
	// commands, file copies, forwards) and an asciicast v2 per process
	// with output (NNNN-pty.cast for terminals, NNNN-exec.cast for
	// commands). Lists leave them out.
	Files     []RecordingFile `json:"files,omitempty"`
	FileCount int             `json:"file_count"`
	Bytes     int64           `json:"bytes"`
	// Complete: the device said it sent everything.
	Complete    bool      `json:"complete"`
	StartedAt   time.Time `json:"started_at,omitzero"` // first upload; zero: nothing uploaded yet
	UpdatedAt   time.Time `json:"updated_at,omitzero"` // last upload that added bytes
	CompletedAt time.Time `json:"completed_at,omitzero"`
}

// RecordingFile is one file of a recording on the server.
type RecordingFile struct {
	Name      string    `json:"name"`
	Size      int64     `json:"size"`
	UpdatedAt time.Time `json:"updated_at"`
}

// OwnerLink answers POST /api/v1/device/owner-link: a token for the
// device's owner that reads the server's copy of this device's audit log
// and recordings, and nothing else (Authorization: Owner <token>). It
// replaces the device's last one. The page at Path under the server's URL
// reads the token from its fragment (#token=...), which browsers never
// send to the server.
type OwnerLink struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Path      string    `json:"path"`
}

// OwnerScheme is the Authorization scheme of an owner link's token.
const OwnerScheme = "Owner"

// Owner answers GET /api/v1/owner: the device an owner token reads.
type Owner struct {
	Fleet     string    `json:"fleet"`
	Device    string    `json:"device"`
	ExpiresAt time.Time `json:"expires_at"`
}
