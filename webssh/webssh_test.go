package webssh

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
)

// TestConnectChecksPapers: papers whose certificate certifies another key
// than the browser's are refused before anything is sent, and the relay's
// connection is closed.
func TestConnectChecksPapers(t *testing.T) {
	mine, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(mine.AuthorizedKey())); err != nil {
		t.Fatalf("AuthorizedKey %q: %v", mine.AuthorizedKey(), err)
	}
	other, _ := NewKey()
	ca, _ := NewKey()
	cert := &ssh.Certificate{Key: other.signer.PublicKey(), CertType: ssh.UserCert, KeyId: "ses_1", ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca.signer); err != nil {
		t.Fatal(err)
	}
	papers := &apitype.CreateSessionResponse{Session: apitype.Session{ID: "ses_1"}, Certificate: string(ssh.MarshalAuthorizedKey(cert)),
		HostCA: ca.AuthorizedKey(), HostPrincipals: []string{"dev1.porthole"}, RelayAddr: "relay:443"}
	relay, far := net.Pipe()
	defer far.Close()
	_, err = mine.Connect(context.Background(), relay, Options{Papers: papers, Device: "dev1"})
	if err == nil || !strings.Contains(err.Error(), "certified another key") {
		t.Fatalf("Connect = %v; want a refusal of a certificate for another key", err)
	}
	if _, err := relay.Write([]byte("x")); err == nil {
		t.Error("Connect left the relay's connection open")
	}
}

// TestExitWords: a shell's own exit is said; a lost connection or a
// signal is left to the session's close reason.
func TestExitWords(t *testing.T) {
	if got := ExitWords(nil, "dev1"); got != "the shell on dev1 exited" {
		t.Errorf("nil: %q", got)
	}
	if got := ExitWords(errors.New("connection lost"), "dev1"); got != "" {
		t.Errorf("lost: %q", got)
	}
	if got := ExitWords(&ExitError{Status: 3}, "dev1"); got != "the shell on dev1 exited with status 3" {
		t.Errorf("status 3: %q", got)
	}
	if got := ExitWords(&ExitError{Status: -1, Signal: "KILL"}, "dev1"); got != "" {
		t.Errorf("killed: %q", got)
	}
}
