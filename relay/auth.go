package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/relay/relayproto"
	"github.com/porthole/porthole/sessioncert"
)

// serverVersion is the relay's SSH identification string.
const serverVersion = "SSH-2.0-PortholeRelay"

// identity is who a connection logged in as; it travels from the login
// callback to the connection's handler in ssh.Permissions.ExtraData.
type identity struct {
	role          Role
	fleet, device string             // the device, or the one the certificate names
	claims        sessioncert.Claims // engineers only
	session       Session            // engineers only: the session at login
}

type identityKey struct{}

// serverConfig is a fresh SSH server configuration for one connection: its
// login callbacks look things up within ctx, which ends with the handshake.
// identified is called when the client offers a key: it has said who it
// is, and the lookups that decide its login may take their time.
func (r *Relay) serverConfig(ctx context.Context, remote string, log *slog.Logger, identified func()) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		ServerVersion: serverVersion,
		MaxAuthTries:  maxAuthTries,
		// Every key may go on to prove that the client holds it: what it
		// may do is decided only then, in VerifiedPublicKeyCallback, so a
		// key offered but not signed for decides nothing.
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			identified()
			return nil, nil
		},
		VerifiedPublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			id, err := r.authenticate(ctx, meta, key, remote, log)
			if err != nil {
				return nil, err
			}
			return &ssh.Permissions{ExtraData: map[any]any{identityKey{}: id}}, nil
		},
	}
	cfg.AddHostKey(r.cfg.HostKey)
	return cfg
}

// authenticate decides a login by a key the client has proved it holds: a
// device name with the device's enrolled key, or anything else with a
// session certificate for an open session.
func (r *Relay) authenticate(ctx context.Context, meta ssh.ConnMetadata, key ssh.PublicKey, remote string, log *slog.Logger) (*identity, error) {
	user := meta.User()
	if fleet, device, ok := control.ParseDeviceUsername(user); ok {
		id, why := r.authDevice(ctx, fleet, device, key, log)
		if why == "" {
			return id, nil
		}
		r.refuse(log, Refusal{Remote: remote, Role: RoleDevice, User: user, Fleet: fleet, Device: device, What: "login", Why: why})
		// No banner: a stranger must not learn which device names exist.
		return nil, errors.New(why)
	}
	id, f := r.authEngineer(ctx, key, log)
	if f.Why == "" {
		return id, nil
	}
	f.Remote, f.Role, f.User, f.What = remote, RoleEngineer, user, "login"
	r.refuse(log, f)
	return nil, &ssh.BannerError{Err: errors.New(f.Why), Message: "porthole relay: " + f.Why + "\n"}
}

// authDevice returns the device's identity, or why it is refused.
func (r *Relay) authDevice(ctx context.Context, fleet, device string, key ssh.PublicKey, log *slog.Logger) (*identity, string) {
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, "a device logs in with its enrolled key, not a certificate"
	}
	if key.Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Sprintf("a device logs in with its ed25519 key, not %s", key.Type())
	}
	want, why, _ := r.deviceKey(ctx, fleet, device, log)
	if why != "" {
		return nil, why
	}
	if !bytes.Equal(want.Marshal(), key.Marshal()) {
		return nil, "not the device's enrolled key"
	}
	return &identity{role: RoleDevice, fleet: fleet, device: device}, ""
}

// deviceKey returns a device's enrolled key, or why it cannot, with the
// reply code for it: a store that did not answer is CodeUnavailable (it
// says nothing of which devices exist, so the second protocol may tell
// it apart), anything else CodeRefused.
func (r *Relay) deviceKey(ctx context.Context, fleet, device string, log *slog.Logger) (key ssh.PublicKey, why, code string) {
	pub, err := r.cfg.DeviceKey(ctx, fleet, device)
	switch {
	case errors.Is(err, ErrUnknownDevice):
		return nil, "no such device (never enrolled, or deleted)", relayproto.CodeRefused
	case err != nil:
		log.Warn("looking up a device's key failed", "device", fleet+"/"+device, "err", err)
		return nil, "the relay could not look up the device's key", relayproto.CodeUnavailable
	}
	key, err = ssh.NewPublicKey(pub)
	if err != nil {
		log.Warn("a device's enrolled key is unusable", "device", fleet+"/"+device, "err", err)
		return nil, "the device's enrolled key is unusable", relayproto.CodeRefused
	}
	return key, "", ""
}

// authEngineer returns the engineer's identity, or a refusal whose Why says
// what is wrong.
func (r *Relay) authEngineer(ctx context.Context, key ssh.PublicKey, log *slog.Logger) (*identity, Refusal) {
	now := r.cfg.Now()
	claims, err := sessioncert.Verify(r.cfg.UserCA, key, now)
	if err != nil {
		return nil, Refusal{Why: "session certificate refused: " + err.Error()}
	}
	f := Refusal{Fleet: claims.Fleet, Device: claims.Device, Session: claims.Session, Engineer: claims.User}
	sess, err := r.cfg.Session(ctx, claims.Session)
	if f.Why, f.code = r.checkSession(sess, err, claims.Session, claims.Fleet, claims.Device, now, log); f.Why != "" {
		return nil, f
	}
	return &identity{role: RoleEngineer, fleet: claims.Fleet, device: claims.Device, claims: claims, session: sess}, Refusal{}
}

// checkSession says why the session that Config.Session returned (sess, err)
// for id cannot be used with the device fleet/device, or "" if it can; and
// the relayproto code that tells a client of the second protocol what to
// make of it.
func (r *Relay) checkSession(sess Session, err error, id, fleet, device string, now time.Time, log *slog.Logger) (why, code string) {
	switch {
	case errors.Is(err, ErrUnknownSession):
		return fmt.Sprintf("session %s does not exist", id), relayproto.CodeRefused
	case err != nil:
		log.Warn("looking up a session failed", "session", id, "err", err)
		return fmt.Sprintf("the relay could not look up session %s; try again", id), relayproto.CodeUnavailable
	case sess.ID != id:
		log.Error("Config.Session returned another session", "asked", id, "got", sess.ID)
		return fmt.Sprintf("the relay could not look up session %s", id), relayproto.CodeUnavailable
	case !sess.Open:
		return fmt.Sprintf("session %s is closed", id), relayproto.CodeClosed
	case sess.Fleet != fleet || sess.Device != device:
		return fmt.Sprintf("session %s is not on device %s/%s", id, fleet, device), relayproto.CodeRefused
	case !sess.Ends.IsZero() && !now.Before(sess.Ends):
		return fmt.Sprintf("session %s has ended", id), relayproto.CodeClosed
	case sess.Relay != "" && r.cfg.ID != "" && sess.Relay != r.cfg.ID:
		return fmt.Sprintf("session %s was placed on another relay node (%s), not this one (%s): dial the relay address the server gave with the session",
			id, sess.Relay, r.cfg.ID), relayproto.CodeRefused
	}
	return "", ""
}

// refuse logs a refusal and reports it to Config.Refused.
func (r *Relay) refuse(log *slog.Logger, f Refusal) {
	f.At = r.cfg.Now()
	attrs := []any{"what", f.What, "why", f.Why, "role", f.Role}
	if f.Session != "" {
		attrs = append(attrs, "session", f.Session)
	}
	if f.Engineer != "" {
		attrs = append(attrs, "engineer", f.Engineer)
	}
	if f.Fleet != "" {
		attrs = append(attrs, "device", f.Fleet+"/"+f.Device)
	}
	log.Info("refused", attrs...)
	r.cfg.Refused(f)
}
