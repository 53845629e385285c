package apitype

import "time"

// AuditEvent is one entry of the server's audit log (GET /api/v1/audit).
// It carries every field its hash covers, so a client can check the chain
// itself (see package audit for the encoding).
type AuditEvent struct {
	Seq      int64             `json:"seq"`
	Time     time.Time         `json:"time"`
	Kind     string            `json:"kind"` // login_succeeded, session_closed, relay_refused, …
	Actor    AuditActor        `json:"actor"`
	FleetID  string            `json:"fleet_id,omitempty"`
	Fleet    string            `json:"fleet,omitempty"` // name at the time
	DeviceID string            `json:"device_id,omitempty"`
	Device   string            `json:"device,omitempty"` // name at the time
	Session  string            `json:"session,omitempty"`
	Detail   map[string]string `json:"detail,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// AuditActor is who did what an event records.
type AuditActor struct {
	Kind string `json:"kind"`           // user, device, system or anonymous
	ID   string `json:"id,omitempty"`   // a user's or device's ID
	Name string `json:"name,omitempty"` // an email, "device.fleet", "system", or what an anonymous party called itself
}

// AuditVerification is the answer of GET /api/v1/audit/verify (and the
// output of `porthole audit --verify --json`).
type AuditVerification struct {
	OK bool `json:"ok"`
	// Count is how many events were found sound, from the first.
	Count int64 `json:"count"`
	// Head is the chain's head, "SEQ:HASH": record it somewhere the
	// database's writers cannot reach, and pass it back as anchor later.
	Head string `json:"head"`
	// Problem is the first break found; absent when OK.
	Problem *AuditProblem `json:"problem,omitempty"`
}

// AuditProblem is where and how the chain is broken.
type AuditProblem struct {
	// Kind is missing, broken_link, edited, inserted, truncated, head or
	// anchor.
	Kind    string `json:"kind"`
	Seq     int64  `json:"seq"` // the first event found wrong (or missing)
	Message string `json:"message"`
}
