package storetest

import (
	"database/sql"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// RunUpgradeFleetPolicy checks migration 0007 (the fleet policy) over the
// rows a database at version 6 held: its support queue, which 0007 makes
// again to admit four-eyes requests, keeps every request as it was, and
// its sessions read as neither four-eyes nor carrying a policy.
// migrateTo returns the database under test migrated to a version only;
// open opens the store on it, migrating the rest.
func RunUpgradeFleetPolicy(t *testing.T, migrateTo func(version int) *sql.DB, open func() store.Store) {
	ctx := t.Context()
	db := migrateTo(6)
	for _, q := range []string{
		`INSERT INTO fleets (id, name, created_at) VALUES ('flt_1', 'alpha', 1)`,
		`INSERT INTO users (id, email, password_hash, totp_secret, created_at) VALUES ('usr_1', 'ann@example.com', 'h', 's', 1)`,
		`INSERT INTO devices (id, fleet_id, name, public_key, host_cert, enrolled_at) VALUES ('dev_1', 'flt_1', 'dev1', 'k', 'c', 1)`,
		`INSERT INTO sessions (id, fleet_id, device_id, user_id, user_email, state, public_key, idle_timeout, max_duration, created_at)
			VALUES ('ses_1', 'flt_1', 'dev_1', 'usr_1', 'ann@example.com', 'waiting_consent', 'k', 60000, 3600000, 2000)`,
		`INSERT INTO support_requests (id, fleet_id, device_id, kind, reason, state, claimed_by, claimed_email, claimed_at, created_at, expires_at)
			VALUES ('req_1', 'flt_1', 'dev_1', 'support', 'it hums', 'claimed', 'usr_1', 'ann@example.com', 1500, 1000, 3601000)`,
		`INSERT INTO support_requests (id, fleet_id, device_id, kind, session_id, requested_by, state, close_reason, closed_by, created_at, expires_at, closed_at)
			VALUES ('req_2', 'flt_1', 'dev_1', 'approval', 'ses_1', 'ann@example.com', 'closed', 'approved', 'device', 2000, 302000, 3000)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("writing the rows of version 6: %v\n%s", err, q)
		}
	}
	db.Close()

	s := open()
	support, err := s.GetSupportRequest(ctx, "req_1")
	ok(t, "GetSupportRequest after the migration", err)
	equal(t, "support request", *support, store.SupportRequest{ID: "req_1", FleetID: "flt_1", FleetName: "alpha", DeviceID: "dev_1",
		DeviceName: "dev1", Kind: store.RequestSupport, Reason: "it hums", State: store.RequestClaimed, ClaimedBy: "usr_1",
		ClaimedEmail: "ann@example.com", CreatedAt: ms(1000), ExpiresAt: ms(3601000), ClaimedAt: ms(1500),
		SessionIDs: []string{"ses_1"}})
	approval, err := s.GetSupportRequest(ctx, "req_2")
	ok(t, "GetSupportRequest after the migration", err)
	equal(t, "approval request", *approval, store.SupportRequest{ID: "req_2", FleetID: "flt_1", FleetName: "alpha", DeviceID: "dev_1",
		DeviceName: "dev1", Kind: store.RequestApproval, SessionID: "ses_1", RequestedBy: "ann@example.com", State: store.RequestClosed,
		CloseReason: "approved", ClosedBy: "device", CreatedAt: ms(2000), ExpiresAt: ms(302000), ClosedAt: ms(3000),
		SessionIDs: []string{"ses_1"}})
	ses, err := s.GetSession(ctx, "ses_1")
	ok(t, "GetSession after the migration", err)
	if ses.FourEyes || ses.WaitsForApproval() || ses.Policy != "" || ses.ApprovedEmail != "" || ses.State != store.SessionWaitingConsent {
		t.Errorf("a session of version 6: %s", show(ses))
	}
	// The session's approval request is still unique of its kind, and a
	// four-eyes request may join it.
	dup := &store.SupportRequest{DeviceID: "dev_1", Kind: store.RequestApproval, SessionID: "ses_1", CreatedAt: t0, ExpiresAt: t0}
	wantErr(t, "a second approval request", s.CreateSupportRequest(ctx, dup), store.ErrConflict)
	four := &store.SupportRequest{DeviceID: "dev_1", Kind: store.RequestFourEyes, SessionID: "ses_1", CreatedAt: t0, ExpiresAt: t0}
	ok(t, "a four-eyes request of the session", s.CreateSupportRequest(ctx, four))
	p, err := s.GetFleetPolicy(ctx, "flt_1")
	ok(t, "GetFleetPolicy after the migration", err)
	equal(t, "policy", *p, store.FleetPolicy{FleetID: "flt_1"})
}

// ms is a time of unix milliseconds, as the store reads one back.
func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }
