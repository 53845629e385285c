package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/porthole/porthole/apitype"
)

// AuditFilter narrows Audit; zero fields match everything. With neither
// Since nor After, the server answers the latest events.
type AuditFilter struct {
	Fleet   string // fleet name
	Device  string // device name (deleted ones too); needs Fleet
	Session string // session ID
	Since   time.Time
	After   int64 // only events after this sequence number
	Limit   int   // zero: the server's default (100); at most 1000
}

// Audit lists audit events of the caller's fleets (administrators: all),
// oldest first.
func (c *Client) Audit(ctx context.Context, f AuditFilter) ([]apitype.AuditEvent, error) {
	q := url.Values{}
	for k, v := range map[string]string{"fleet": f.Fleet, "device": f.Device, "session": f.Session} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	if f.After > 0 {
		q.Set("after", strconv.FormatInt(f.After, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return list[apitype.AuditEvent](ctx, c, "/api/v1/audit", q)
}

// VerifyAudit has the server walk the audit log's hash chain
// (administrators only). anchor, when not empty, is a head recorded
// earlier ("SEQ:HASH") that the chain must still hold. A broken chain is
// not an error: the answer says what is wrong.
func (c *Client) VerifyAudit(ctx context.Context, anchor string) (*apitype.AuditVerification, error) {
	var q url.Values
	if anchor != "" {
		q = url.Values{"anchor": {anchor}}
	}
	var v apitype.AuditVerification
	if err := c.Do(ctx, http.MethodGet, "/api/v1/audit/verify", q, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}
