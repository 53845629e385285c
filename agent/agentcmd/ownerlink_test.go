package agentcmd

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agent/agentupload"
	"github.com/porthole/porthole/apitype"
)

// linkServer gives one owner link, as the server would.
type linkServer struct{ link apitype.OwnerLink }

func (s linkServer) OwnerLink(context.Context) (*apitype.OwnerLink, error) { return &s.link, nil }

func TestOwnerLinkCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, err := run(t, nil, "owner-link", "--state", dir)
	if !errors.Is(err, agentupload.ErrNoOwnerLink) || !strings.Contains(err.Error(), "porthole-agent run") {
		t.Fatalf("owner-link before the agent got one: %v", err)
	}
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	srv := linkServer{apitype.OwnerLink{Token: "pho_secret", ExpiresAt: expires, Path: "/owner/"}}
	if _, err := agentupload.RenewOwnerLink(t.Context(), dir, "https://porthole.example.com:8443/", "sha256:abcd", srv); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, nil, "owner-link", "--state", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"https://porthole.example.com:8443/owner/#token=pho_secret\n",
		"curl --insecure -H 'Authorization: Owner pho_secret' https://porthole.example.com:8443/api/v1/owner/audit\n",
		"check that it is sha256:abcd",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("owner-link printed %q; want %q in it", out, want)
		}
	}
	out, _, err = run(t, nil, "owner-link", "--state", dir, "--json")
	var l agentupload.OwnerLink
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || l.Token != "pho_secret" || !l.ExpiresAt.Equal(expires) {
		t.Errorf("owner-link --json: %q, %v", out, err)
	}
	// --new needs the device's key: an unenrolled directory says so.
	if _, _, err := run(t, nil, "owner-link", "--state", t.TempDir(), "--new"); !errors.Is(err, agentstate.ErrNotEnrolled) {
		t.Errorf("owner-link --new without an enrollment: %v", err)
	}
}
