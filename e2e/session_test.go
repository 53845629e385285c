package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
)

// engineer is a Go client of the API and the relay, doing by hand what
// `porthole ssh` does, so the server, relay and agent binaries are tested
// on their own.
type engineer struct {
	api    *apiclient.Client
	signer ssh.Signer
}

func newEngineer(t *testing.T, s *presenceServer) *engineer {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.env["XDG_CONFIG_HOME"], "porthole", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		Token string            `json:"token"`
		Pins  map[string]string `json:"pins"`
	}
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	var fp string
	for _, pin := range saved.Pins {
		fp = pin
	}
	c, err := apiclient.New(s.url, apiclient.Options{Token: saved.Token, Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &engineer{api: c, signer: signer}
}

// open asks for a session on the named device and waits for it to be
// active.
func (e *engineer) open(t *testing.T, device string) *apitype.CreateSessionResponse {
	t.Helper()
	ctx := t.Context()
	ds, err := e.api.Devices(ctx, apiclient.DeviceFilter{Name: device})
	if err != nil || len(ds) != 1 {
		t.Fatalf("finding %s: %v %v", device, ds, err)
	}
	resp, err := e.api.CreateSession(ctx, ds[0].ID, apitype.CreateSessionRequest{
		PublicKey: string(ssh.MarshalAuthorizedKey(e.signer.PublicKey())), Reason: "e2e"})
	if err != nil {
		t.Fatalf("creating a session on %s: %v", device, err)
	}
	ses, err := e.api.WaitSession(ctx, resp.Session.ID, apitype.SessionActive, 20*time.Second)
	if err != nil || ses.State != apitype.SessionActive {
		t.Fatalf("session %s is not active: %+v %v", resp.Session.ID, ses, err)
	}
	return resp
}

// dial reaches the device's SSH server through the relay, end to end, and
// logs in with the session certificate.
func (e *engineer) dial(t *testing.T, resp *apitype.CreateSessionResponse) (*ssh.Client, error) {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(pub.(*ssh.Certificate), e.signer)
	if err != nil {
		t.Fatal(err)
	}
	hostCA, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.HostCA))
	if err != nil {
		t.Fatal(err)
	}
	checker := &ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool {
		return bytes.Equal(k.Marshal(), hostCA.Marshal())
	}}
	cfg := func() *ssh.ClientConfig {
		return &ssh.ClientConfig{User: resp.Session.ID, Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
			HostKeyCallback: checker.CheckHostKey, Timeout: 10 * time.Second}
	}
	relayConn, err := ssh.Dial("tcp", resp.RelayAddr, cfg())
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	ch, err := relayConn.Dial("tcp", net.JoinHostPort(resp.Session.ID, "22"))
	if err != nil {
		relayConn.Close()
		return nil, fmt.Errorf("direct-tcpip: %w", err)
	}
	c, chans, reqs, err := ssh.NewClientConn(ch, resp.HostPrincipals[1]+":22", cfg())
	if err != nil {
		relayConn.Close()
		return nil, fmt.Errorf("device: %w", err)
	}
	t.Cleanup(func() { relayConn.Close() })
	return ssh.NewClient(c, chans, reqs), nil
}

func sessionConfig(t *testing.T, idle string) func(data string, apiPort int) string {
	return func(data string, apiPort int) string {
		return fmt.Sprintf(`data_dir: .
listen: 127.0.0.1:%d
public_url: https://127.0.0.1:%d
broker:
  listen: 127.0.0.1:%d
relay:
  listen: 127.0.0.1:%d
sessions:
  idle_timeout: %s
  connect_timeout: 5s
`, apiPort, apiPort, FreePort(t), FreePort(t), idle)
	}
}

// oneDevice starts a server (sessions idle after idle) with dev1 enrolled,
// its agent running (consent: auto) and online, and an engineer.
func oneDevice(t *testing.T, idle string) (*presenceServer, *Proc, *engineer) {
	t.Helper()
	srv := newPresenceServer(t, sessionConfig(t, idle))
	state := srv.enroll(t, "dev1")
	agent := srv.runAgent(t, state, "")
	srv.waitPresence(t, "dev1", true, "after the agent started")
	return srv, agent, newEngineer(t, srv)
}

// connect opens an active session on device and reaches its SSH server.
func (e *engineer) connect(t *testing.T, device string, agent *Proc) (*apitype.CreateSessionResponse, *ssh.Client) {
	t.Helper()
	resp := e.open(t, device)
	client, err := e.dial(t, resp)
	if err != nil {
		t.Fatalf("reaching %s: %v\nagent log:\n%s", device, err, agent.Stderr())
	}
	return resp, client
}

// TestSessionEndToEnd: an engineer asks for a session, the device dials the
// relay, the engineer runs a command on the device through it, closes the
// session, and the device's SSH server no longer lets the certificate in.
func TestSessionEndToEnd(t *testing.T) {
	t.Parallel()
	_, agent, eng := oneDevice(t, "15m")
	resp, client := eng.connect(t, "dev1", agent)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("echo hello from $(hostname); exit 3")
	if ee, ok := err.(*ssh.ExitError); !ok || ee.ExitStatus() != 3 || !strings.Contains(string(out), "hello from") {
		t.Errorf("exec: %q, %v; want the output and exit status 3", out, err)
	}

	closed, err := eng.api.CloseSession(t.Context(), resp.Session.ID)
	if err != nil || closed.CloseReason != "engineer_closed" {
		t.Fatalf("closing: %+v %v", closed, err)
	}
	// The device hears of it and its SSH server ends the connection.
	done := make(chan error, 1)
	go func() { done <- client.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the engineer's connection outlived the closed session by 5 s")
	}
	if _, err := eng.dial(t, resp); err == nil {
		t.Error("a closed session's certificate still reaches the device")
	}
}

// TestSessionIdleTimeout: with no engineer input the session closes, on
// the server's and on the device's clock, and the reason is recorded.
func TestSessionIdleTimeout(t *testing.T) {
	t.Parallel()
	_, agent, eng := oneDevice(t, "2s")
	resp, _ := eng.connect(t, "dev1", agent)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ses, err := eng.api.WaitSession(ctx, resp.Session.ID, apitype.SessionClosed, 15*time.Second)
	if err != nil || ses.State != apitype.SessionClosed || ses.CloseReason != "idle_timeout" {
		t.Fatalf("after 2 s idle: %+v %v; want closed, idle_timeout", ses, err)
	}
}

// TestSessionDeviceUnreachable: a device that never takes up the session
// (its agent is stopped right after it was seen online) closes it as
// device_unreachable after connect_timeout.
func TestSessionDeviceUnreachable(t *testing.T) {
	t.Parallel()
	_, agent, eng := oneDevice(t, "15m")
	ds, _ := eng.api.Devices(t.Context(), apiclient.DeviceFilter{Name: "dev1"})
	kill(t, agent) // the server has not noticed yet: the device still shows online
	resp, err := eng.api.CreateSession(t.Context(), ds[0].ID, apitype.CreateSessionRequest{
		PublicKey: string(ssh.MarshalAuthorizedKey(eng.signer.PublicKey()))})
	if err != nil {
		// The broker noticed the kill first: that is the offline answer.
		if !apiclient.IsCode(err, apitype.CodeDeviceOffline) {
			t.Fatal(err)
		}
		return
	}
	ses, err := eng.api.WaitSession(t.Context(), resp.Session.ID, apitype.SessionClosed, 20*time.Second)
	if err != nil || ses.CloseReason != "device_unreachable" {
		t.Fatalf("%+v %v; want closed as device_unreachable", ses, err)
	}
}

// TestSessionAgentKilled: a device killed in the middle of a session says
// nothing more; the relay notices its connection drop and the server
// closes the session within seconds, not at the idle timeout.
func TestSessionAgentKilled(t *testing.T) {
	t.Parallel()
	_, agent, eng := oneDevice(t, "15m")
	resp, _ := eng.connect(t, "dev1", agent)
	kill(t, agent)
	ses, err := eng.api.WaitSession(t.Context(), resp.Session.ID, apitype.SessionClosed, 20*time.Second)
	if err != nil || ses.State != apitype.SessionClosed || ses.CloseReason != "device_disconnected" {
		t.Fatalf("after the agent was killed: %+v %v; want closed, device_disconnected", ses, err)
	}
}
