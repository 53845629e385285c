package agentupload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/apitype"
)

// OwnerLinkFile, in the state directory, is the owner's read-only link to
// the server's copy of this device's audit log and recordings. The running
// agent asks the server for one with the device's key and renews it before
// it expires; the file is readable by agentstate.OwnerGroup (0640), so the owner
// reads it without the key.
const OwnerLinkFile = "owner-link.json"

// ErrNoOwnerLink means the agent has not got an owner link yet.
var ErrNoOwnerLink = errors.New("agentupload: no owner link yet")

// OwnerLink is the owner's read-only link: with its token ("Authorization:
// Owner <token>") the owner reads the server's log of this device, its
// sessions and their recordings, and nothing else; URL opens a page that
// shows them. A new link replaces the last one at the server.
type OwnerLink struct {
	URL         string    `json:"url"`
	Token       string    `json:"token"`
	Server      string    `json:"server"`
	Fingerprint string    `json:"fingerprint,omitempty"` // the server's certificate, when it is self-signed
	ExpiresAt   time.Time `json:"expires_at"`
}

// Curl is a command that reads path (such as /api/v1/owner/audit) with the
// link's token.
func (l *OwnerLink) Curl(path string) string {
	insecure := ""
	if l.Fingerprint != "" {
		// curl cannot pin a certificate's own hash; the note beside the
		// command says what to compare.
		insecure = "--insecure "
	}
	return fmt.Sprintf("curl %s-H 'Authorization: %s %s' %s%s", insecure, apitype.OwnerScheme, l.Token, l.Server, path)
}

// ReadOwnerLink reads the owner link the agent keeps; ErrNoOwnerLink when
// there is none yet.
func ReadOwnerLink(stateDir string) (*OwnerLink, error) {
	path := filepath.Join(stateDir, OwnerLinkFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(stateDir); serr != nil {
			return nil, agentstate.ReadError(stateDir, serr)
		}
		return nil, noOwnerLinkError{}
	} else if err != nil {
		return nil, agentstate.ReadError(path, err)
	}
	var l OwnerLink
	if err := json.Unmarshal(data, &l); err != nil || l.Token == "" {
		return nil, fmt.Errorf("%s is damaged; porthole-agent owner-link --new makes a new link", path)
	}
	return &l, nil
}

// OwnerLinkServer gives owner links; *apiclient.Client is one.
type OwnerLinkServer interface {
	OwnerLink(ctx context.Context) (*apitype.OwnerLink, error)
}

// RenewOwnerLink asks the server at serverURL (whose certificate has
// fingerprint, if pinned) for a new owner link, which replaces the last
// one there, and saves it in the state directory.
func RenewOwnerLink(ctx context.Context, stateDir, serverURL, fingerprint string, server OwnerLinkServer) (*OwnerLink, error) {
	got, err := server.OwnerLink(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking the server for an owner link: %w", err)
	}
	base := strings.TrimRight(serverURL, "/")
	l := &OwnerLink{URL: base + got.Path + "#token=" + got.Token, Token: got.Token, Server: base,
		Fingerprint: fingerprint, ExpiresAt: got.ExpiresAt}
	data, err := jsonIndent(l)
	if err != nil {
		return nil, err
	}
	if err := agentstate.WriteFileShared(filepath.Join(stateDir, OwnerLinkFile), data, agentstate.OwnerGID()); err != nil {
		return nil, fmt.Errorf("saving the owner link: %w", err)
	}
	return l, nil
}

// ownerLinkRenew is how long before its end an owner link is renewed: the
// owner's bookmark keeps working as long as the agent runs now and then.
const ownerLinkRenew = 7 * 24 * time.Hour

// keepOwnerLink gets an owner link and renews it before it expires, until
// ctx ends.
func (u *Uploader) keepOwnerLink(ctx context.Context) {
	attempt := 0
	for {
		wait, err := u.ensureOwnerLink(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			wait = u.backoff.Delay(attempt, rand.Float64())
			attempt++
			u.log.Warn("cannot get the owner link; trying again later", "in", wait.Round(time.Second), "err", err)
		} else {
			attempt = 0
		}
		if !sleepFor(ctx, wait) {
			return
		}
	}
}

// ensureOwnerLink renews the owner link when there is none, it is for
// another server, or it ends within ownerLinkRenew, and says when to look
// again.
func (u *Uploader) ensureOwnerLink(ctx context.Context) (time.Duration, error) {
	const daily = 24 * time.Hour
	l, err := ReadOwnerLink(u.stateDir)
	if err == nil && l.Server == strings.TrimRight(u.serverURL, "/") {
		if left := l.ExpiresAt.Sub(u.now()) - ownerLinkRenew; left > 0 {
			return min(left, daily), nil
		}
	}
	if _, err := RenewOwnerLink(ctx, u.stateDir, u.serverURL, u.fingerprint, u.server); err != nil {
		return 0, err
	}
	u.log.Info("got a new owner link", "file", filepath.Join(u.stateDir, OwnerLinkFile))
	return daily, nil
}

// noOwnerLinkError tells the owner there is no link yet; it matches
// ErrNoOwnerLink.
type noOwnerLinkError struct{}

func (noOwnerLinkError) Error() string {
	return "the agent has no owner link yet: it asks the server for one as it runs (porthole-agent run)"
}

func (noOwnerLinkError) Is(target error) bool { return target == ErrNoOwnerLink }
