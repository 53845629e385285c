package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/proxydial"
)

// EnrollOptions are the inputs of Enroll.
type EnrollOptions struct {
	// Server is the API's base URL, https://host:port. Required.
	Server string
	// Token is the enrollment token a fleet owner made. Required.
	Token string
	// Name is the device's name in its fleet, [a-z0-9-]{1,63}. Required.
	Name string
	// StateDir is where the key and the enrollment are kept. Empty:
	// agentstate.DefaultDir.
	StateDir string
	// Fingerprint pins the server's certificate, "sha256:<hex>". Empty:
	// the system's roots must trust it.
	Fingerprint string
	// Logger gets progress at debug level. Nil: nothing is logged.
	Logger *slog.Logger
	// NetDial reaches the server. Nil: through the proxy the environment
	// names (HTTPS_PROXY, NO_PROXY), if one applies.
	NetDial proxydial.DialFunc
}

// Enroll enrolls this device with a Porthole server and saves its state
// (see the package comment for the steps). It refuses a state directory
// that already holds an enrollment. Errors are sentences for the device's
// owner; the causes callers may branch on match ErrAlreadyEnrolled,
// ErrNameTaken, ErrTokenRejected and ErrServerUntrusted with errors.Is.
func Enroll(ctx context.Context, opts EnrollOptions) (*agentstate.State, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	client, err := apiclient.New(opts.Server, apiclient.Options{Fingerprint: opts.Fingerprint, NetDial: opts.NetDial})
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := opts.StateDir
	if err := agentstate.Prepare(dir); err != nil {
		return nil, err
	}
	if err := checkNotEnrolled(dir); err != nil {
		return nil, err
	}
	priv, err := agentstate.DeviceKey(dir)
	if err != nil {
		return nil, err
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("using the device key: %w", err)
	}
	log.Debug("device key ready", "dir", dir, "key", ssh.FingerprintSHA256(key.PublicKey()))
	log.Debug("enrolling", "server", opts.Server, "name", opts.Name)
	resp, err := client.Enroll(ctx, apitype.EnrollRequest{
		Token:     opts.Token,
		Name:      opts.Name,
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey()))),
	})
	if err != nil {
		return nil, explainEnrollError(ctx, err, opts)
	}
	cert, err := checkEnrollResponse(resp, key.PublicKey(), opts.Name, time.Now())
	if err != nil {
		return nil, fmt.Errorf("the server's answer cannot be trusted, nothing was saved: %w", err)
	}
	enr := &agentstate.Enrollment{
		Server:         opts.Server,
		Fingerprint:    opts.Fingerprint,
		Fleet:          resp.Device.Fleet,
		DeviceID:       resp.Device.ID,
		Name:           resp.Device.Name,
		ControlKey:     resp.ControlKey,
		UserCA:         resp.UserCA,
		HostCA:         resp.HostCA,
		TLSFingerprint: resp.TLSFingerprint,
		BrokerURL:      resp.BrokerURL,
		RelayAddr:      resp.RelayAddr,
		EnrolledAt:     time.Now().UTC(),
	}
	if err := agentstate.WriteEnrollment(dir, enr, strings.TrimSpace(resp.HostCert)); err != nil {
		return nil, fmt.Errorf("the server enrolled %s but saving its state failed (%w); a fleet owner must delete the device (porthole devices rm %s) before it can enroll again", opts.Name, err, opts.Name)
	}
	log.Debug("enrolled", "fleet", enr.Fleet, "device_id", enr.DeviceID)
	return &agentstate.State{Dir: dir, Enrollment: *enr, Key: key, PrivateKey: priv, HostCert: cert}, nil
}

// validate checks the options before anything is touched and fills in
// defaults.
func (o *EnrollOptions) validate() error {
	if o.StateDir == "" {
		o.StateDir = agentstate.DefaultDir
	}
	o.Server = strings.TrimRight(o.Server, "/")
	switch u, err := url.Parse(o.Server); {
	case o.Server == "":
		return errors.New("the server's address is required (--server https://porthole.example.com:8443)")
	case err != nil || u.Host == "" || u.Scheme != "https":
		// Plain http would show the token, and the device's trust in the
		// server, to anyone on the way.
		return fmt.Errorf("the server address %q must be a URL starting with https://, like https://porthole.example.com:8443", o.Server)
	}
	if strings.TrimSpace(o.Token) == "" {
		return errors.New("an enrollment token is required (--token); a fleet owner makes one with: porthole enroll-token create")
	}
	o.Token = strings.TrimSpace(o.Token)
	return CheckName(o.Name)
}

// CheckName checks a device name: 1 to 63 of a-z, 0-9 and '-'.
func CheckName(name string) error {
	if name == "" {
		return errors.New("a device name is required (--name), such as kitchen-amp or field-cam-7")
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("the device name %q may hold only lower-case letters a-z, digits and '-'", name)
		}
	}
	if len(name) > 63 {
		return fmt.Errorf("the device name %q is %d characters long; at most 63 are allowed", name, len(name))
	}
	return nil
}

// checkNotEnrolled refuses a state directory that already holds an
// enrollment: enrolling again would orphan the device's identity.
func checkNotEnrolled(dir string) error {
	enr, err := agentstate.ReadEnrollment(dir)
	if errors.Is(err, agentstate.ErrNotEnrolled) {
		return nil
	} else if err != nil {
		return err
	}
	return &explained{kind: ErrAlreadyEnrolled, msg: fmt.Sprintf(
		"this device is already enrolled as %s in fleet %s (state in %s); remove %s to enroll again",
		enr.Name, enr.Fleet, dir, dir)}
}

// checkEnrollResponse checks everything the server sent before any of it is
// saved: the device it enrolled is the one asked for, the keys parse, and
// the host certificate is for this device's key, signed by the host CA and
// valid now.
func checkEnrollResponse(resp *apitype.EnrollResponse, devicePub ssh.PublicKey, name string, now time.Time) (*ssh.Certificate, error) {
	if resp.Device.Name != name {
		return nil, fmt.Errorf("asked to enroll %q, the server enrolled %q", name, resp.Device.Name)
	}
	if CheckName(resp.Device.Fleet) != nil {
		return nil, fmt.Errorf("the server named no valid fleet (%q)", resp.Device.Fleet)
	}
	for _, k := range []struct{ what, line string }{
		{"control key", resp.ControlKey},
		{"user CA", resp.UserCA},
	} {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.line))
		if err != nil {
			return nil, fmt.Errorf("the %s is not an SSH public key: %w", k.what, err)
		}
		if pub.Type() != ssh.KeyAlgoED25519 {
			return nil, fmt.Errorf("the %s is a %s key; Porthole's keys are ed25519", k.what, pub.Type())
		}
	}
	cert, err := agentstate.CheckHostCert(resp.HostCert, devicePub, resp.HostCA, resp.Device.Fleet, name)
	if err != nil {
		return nil, err
	}
	if err := agentstate.CheckCertTime(cert, now); err != nil {
		return nil, err
	}
	return cert, nil
}
