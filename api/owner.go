package api

import (
	"context"
	"crypto/sha256"
	_ "embed" // the owner's page
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// Owner links: a device's owner reads the server's copy of what was done
// on their device, without an account. The running agent asks for a link
// with the device's own credential (POST /api/v1/device/owner-link); the
// server keeps only the hash of its token, which expires after
// OwnerLinkTTL and is replaced by the device's next one. "Authorization:
// Owner <token>" then reads the device's audit events, its sessions and
// their recordings under /api/v1/owner, and nothing else: every other
// route refuses the scheme (401), and another device's session answers as
// a missing one (404). The page at /owner/ does the same from a browser,
// with the token in its URL's fragment, which browsers never send.

// OwnerLinkTTL is how long an owner link works.
const OwnerLinkTTL = 30 * 24 * time.Hour

// ownerPagePath is the owner's page under the server's URL.
const ownerPagePath = "/owner/"

// createOwnerLink is POST /api/v1/device/owner-link.
func (s *Server) createOwnerLink(c *call, _ *none) (apitype.OwnerLink, error) {
	secret, hash := auth.NewSecret("pho")
	now := s.now()
	tok := &store.OwnerToken{DeviceID: c.dev.ID, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(OwnerLinkTTL)}
	ev := audit.Event{Kind: audit.OwnerLinkCreated, Actor: audit.Device(c.dev.ID, c.dev.FleetName, c.dev.Name),
		Detail: map[string]string{"expires_at": tok.ExpiresAt.UTC().Format(time.RFC3339), "remote": clientAddr(c.r)}}
	if err := s.store.CreateOwnerToken(store.WithAudit(c.ctx, ev), tok); err != nil {
		return apitype.OwnerLink{}, fmt.Errorf("storing the owner token of %s: %w", c.dev.ID, err)
	}
	return apitype.OwnerLink{Token: secret, ExpiresAt: tok.ExpiresAt, Path: ownerPagePath}, nil
}

type ownerKey struct{}

// authenticateOwner finds the device an "Authorization: Owner <token>"
// reads. Its device becomes the call's device.
func (c *call) authenticateOwner() error {
	scheme, secret, _ := strings.Cut(c.r.Header.Get("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	if !strings.EqualFold(scheme, apitype.OwnerScheme) || secret == "" {
		return unauthenticated("this request needs an owner link's token: \"Authorization: Owner <token>\"")
	}
	expired := unauthenticated("this owner link expired or was replaced by a newer one; `porthole-agent status` on the device prints the current one")
	tok, err := c.s.store.OwnerTokenByHash(c.ctx, auth.HashSecret(secret), c.s.now())
	if errors.Is(err, store.ErrNotFound) {
		return expired
	} else if err != nil {
		return fmt.Errorf("looking up the owner token: %w", err)
	}
	d, err := c.s.store.GetDevice(c.ctx, tok.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return expired
	} else if err != nil {
		return fmt.Errorf("looking up device %s: %w", tok.DeviceID, err)
	}
	c.dev = d
	c.ctx = context.WithValue(c.ctx, ownerKey{}, tok)
	return nil
}

// getOwner is GET /api/v1/owner: which device the token reads, and until
// when.
func (s *Server) getOwner(c *call, _ *none) (apitype.Owner, error) {
	tok, _ := c.ctx.Value(ownerKey{}).(*store.OwnerToken)
	if tok == nil {
		return apitype.Owner{}, errors.New("an owner route ran without its token")
	}
	return apitype.Owner{Fleet: c.dev.FleetName, Device: c.dev.Name, ExpiresAt: tok.ExpiresAt}, nil
}

// ownerAudit is GET /api/v1/owner/audit: the audit events of the owner's
// device and its sessions, oldest first; without since or after, the
// latest ones.
func (s *Server) ownerAudit(c *call, _ *none) ([]apitype.AuditEvent, error) {
	f, err := parseAuditQuery(c.r.URL.Query())
	if err != nil {
		return nil, err
	}
	f.FleetIDs, f.Device = []string{c.dev.FleetID}, c.dev.Name
	evs, err := s.store.ListAudit(c.ctx, f)
	if err != nil {
		return nil, fmt.Errorf("listing audit events: %w", err)
	}
	// The name selects; the ID keeps out the events of a deleted device
	// that had the same name.
	out := []apitype.AuditEvent{}
	for _, e := range evs {
		if e.DeviceID == c.dev.ID {
			out = append(out, apiAuditEvent(e))
		}
	}
	return out, nil
}

// ownerSessions is GET /api/v1/owner/sessions: the device's sessions,
// newest first (the latest 100), with what was uploaded of each.
func (s *Server) ownerSessions(c *call, _ *none) ([]apitype.Recording, error) {
	ss, err := s.store.ListSessions(c.ctx, store.SessionFilter{DeviceID: c.dev.ID, Limit: 100})
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	ids := make([]string, len(ss))
	for i, ses := range ss {
		ids[i] = ses.ID
	}
	recs, err := s.store.ListRecordings(c.ctx, store.RecordingFilter{DeviceID: c.dev.ID, SessionIDs: ids})
	if err != nil {
		return nil, fmt.Errorf("listing recordings: %w", err)
	}
	byID := map[string]*store.Recording{}
	for _, r := range recs {
		byID[r.SessionID] = r
	}
	out := make([]apitype.Recording, len(ss))
	for i, ses := range ss {
		out[i] = apiRecording(ses, byID[ses.ID])
	}
	return out, nil
}

// ownerSession finds a session of the owner's device; another device's
// answers as a missing one.
func (c *call) ownerSession(id string) (*store.Session, error) {
	missing := notFound("device %s has no session %q", c.dev.Name, id)
	ses, err := c.s.store.GetSession(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && ses.DeviceID != c.dev.ID {
		return nil, missing
	} else if err != nil {
		return nil, fmt.Errorf("looking up session %q: %w", id, err)
	}
	return ses, nil
}

// ownerRecording is GET /api/v1/owner/sessions/{id}/recording.
func (s *Server) ownerRecording(c *call, _ *none) (apitype.Recording, error) {
	ses, err := c.ownerSession(c.r.PathValue("id"))
	if err != nil {
		return apitype.Recording{}, err
	}
	return s.recordingOf(c, ses)
}

// ownerRecordingFile is GET /api/v1/owner/sessions/{id}/recording/files/{name}.
func (s *Server) ownerRecordingFile(c *call) error {
	ses, err := c.ownerSession(c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.recDisk.serve(c, ses, c.r.PathValue("name"))
}

//go:embed owner_page.html
var ownerPage []byte

// ownerPageCSP lets the page run its own script and style, and reach
// nothing but this server's API.
var ownerPageCSP = func() string {
	hashOf := func(tag string) string {
		m := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`).FindSubmatch(ownerPage)
		if m == nil {
			panic("api: owner_page.html has no <" + tag + ">")
		}
		sum := sha256.Sum256(m[1])
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return "default-src 'none'; script-src " + hashOf("script") + "; style-src " + hashOf("style") +
		"; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// serveOwnerPage is GET /owner/: the owner's page, which reads the token
// from the URL's fragment and calls /api/v1/owner with it.
func serveOwnerPage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", ownerPageCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.Write(ownerPage)
}
