package store

import (
	"context"
	"time"
)

// Recording is what the server holds of a session's recording, uploaded
// by the device that recorded it: the files' sizes here, their bytes on
// the server's disk (package api keeps them).
type Recording struct {
	SessionID string
	// The session's fleet and device, filled on reads.
	FleetID  string
	DeviceID string
	// Files are the recording's files by name; GetRecording fills them,
	// ListRecordings leaves them nil.
	Files []RecordingFile
	// FileCount and Bytes are the files and their sizes together.
	FileCount int
	Bytes     int64
	StartedAt time.Time // the first upload
	UpdatedAt time.Time // the last upload that added bytes
	// CompletedAt is when the device said it had sent everything; zero
	// while it has not, or since a file grew again (a session taken up
	// again after the agent restarted).
	CompletedAt time.Time
}

// Complete reports whether the device said it sent the whole recording.
func (r *Recording) Complete() bool { return !r.CompletedAt.IsZero() }

// RecordingFile is one file of a recording.
type RecordingFile struct {
	Name      string
	Size      int64
	UpdatedAt time.Time
}

// RecordingFilter selects recordings; zero fields match everything.
type RecordingFilter struct {
	FleetIDs   []string // nil: all fleets; empty non-nil: none
	DeviceID   string
	SessionIDs []string // nil: every session; empty non-nil: none
	// Limit caps how many are returned, newest session first. Zero: 100.
	Limit int
}

// OwnerToken is a device owner's read-only link to the server's copy of
// their device's audit log and recordings. A device has at most one: a new
// one replaces the last. Only the hash of its secret is kept.
type OwnerToken struct {
	ID         string
	DeviceID   string
	DeviceName string // filled on reads
	FleetID    string // filled on reads
	FleetName  string // filled on reads
	Hash       string // hex SHA-256 of the secret
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// Recordings are the uploaded recordings' metadata and the owners' links,
// part of Store.
type Recordings interface {
	// PutRecordingFile records that the file name of a session's
	// recording now holds size bytes, making the recording with its first
	// file; the recording's counts follow. A change of size reopens a
	// complete recording. A missing session is ErrNotFound.
	PutRecordingFile(ctx context.Context, sessionID, name string, size int64, at time.Time) error
	// CompleteRecording marks a recording complete at at and returns it
	// with changed true, recording the events ctx carries (WithAudit); a
	// complete one is returned unchanged with changed false. No recording
	// of the session is ErrNotFound.
	CompleteRecording(ctx context.Context, sessionID string, at time.Time) (r *Recording, changed bool, err error)
	// GetRecording returns a session's recording with its files; nothing
	// uploaded yet is ErrNotFound.
	GetRecording(ctx context.Context, sessionID string) (*Recording, error)
	// ListRecordings lists recordings without their files, newest session
	// first.
	ListRecordings(ctx context.Context, f RecordingFilter) ([]*Recording, error)

	// CreateOwnerToken stores a device's owner token, setting its ID (and
	// CreatedAt when zero), and deletes the one it had, in one
	// transaction that records the events ctx carries. A missing device
	// is ErrNotFound.
	CreateOwnerToken(ctx context.Context, t *OwnerToken) error
	// OwnerTokenByHash returns an unexpired owner token; expired ones are
	// ErrNotFound.
	OwnerTokenByHash(ctx context.Context, hash string, now time.Time) (*OwnerToken, error)
}
