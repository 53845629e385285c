package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// EventLogFile is the agent's own record of security events in the state
// directory: one JSON object per line, appended and synced before the agent
// acts on the event. It is readable by OwnerGroup (porthole-agent log);
// what happens inside sessions is in SessionsDir.
const EventLogFile = "agent.log"

// Security events in the event log.
const (
	eventCommandAccepted = "command_accepted"
	eventCommandRejected = "command_rejected"

	// Sessions, from the recorder (see Recordings).
	eventEngineerConnected    = "engineer_connected"
	eventEngineerDisconnected = "engineer_disconnected"
	eventSessionEnded         = "session_ended"
	eventRecordingTruncated   = "recording_truncated"
	eventRecordingFailed      = "recording_failed"
	eventRecordingDeleted     = "recording_deleted"
)

// event is one line of the event log. Empty fields are left out.
type event struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	Type    string    `json:"type,omitempty"`    // command type, once verified
	Session string    `json:"session,omitempty"` // session id, once verified
	Reason  string    `json:"reason,omitempty"`  // rejection reason
	Detail  string    `json:"detail,omitempty"`  // what exactly failed
	Size    int       `json:"size,omitempty"`    // bytes received
	User    string    `json:"user,omitempty"`    // the engineer, from the certificate
	Bytes   int64     `json:"bytes,omitempty"`   // a session's recording on disk
}

// eventLog appends events to a file. It is safe for concurrent use.
type eventLog struct {
	mu sync.Mutex
	f  *os.File // guarded by mu
}

// openEventLog opens path for appending, creating it readable by the
// owner's group.
func openEventLog(path string) (*eventLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, sharedFileMode)
	if err != nil {
		return nil, fmt.Errorf("opening the event log: %w", err)
	}
	if err := shareFile(f, sharedFileMode, ownerGID()); err != nil {
		f.Close()
		return nil, fmt.Errorf("opening the event log: %w", err)
	}
	return &eventLog{f: f}, nil
}

// write appends ev as one line and syncs it to disk, so an event the agent
// acted on is on record even if the device loses power right after.
func (l *eventLog) write(ev event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding an event: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("writing the event log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("syncing the event log: %w", err)
	}
	return nil
}

func (l *eventLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
