package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// enroll is POST /api/v1/enroll: a device presents an enrollment token, its
// name and its own public key, and receives its host certificate and the
// keys it must trust. The token's use and the device's creation happen in
// one transaction; failures with bad tokens count against the client's
// address.
func (s *Server) enroll(c *call, req *apitype.EnrollRequest) (apitype.EnrollResponse, error) {
	var resp apitype.EnrollResponse
	if req.Token == "" {
		return resp, badRequest("token is required: the enrollment token from `porthole enroll-token create`")
	}
	if err := checkName("device name", req.Name); err != nil {
		return resp, err
	}
	pub, err := parseDeviceKey(req.PublicKey)
	if err != nil {
		return resp, err
	}
	now := s.now().UTC()
	forgive, err := attempt(now, limit{s.enrollByAddr, sourceKey(clientAddr(c.r)), "too many failed enrollments from your address"})
	if err != nil {
		s.enrollRefused(c, req, "", reasonRateLimited)
		return resp, err
	}
	d := &store.Device{Name: req.Name, PublicKey: authorizedKey(pub), EnrolledAt: now}
	var fleet, hostCert string
	// The store fills in the device and its fleet, which the token decides.
	enrolled := audit.Event{Kind: audit.DeviceEnrolled, Actor: audit.Device("", "", req.Name),
		Detail: map[string]string{"key": ssh.FingerprintSHA256(pub)}}
	err = s.store.EnrollDevice(c.withAudit(enrolled).ctx, auth.HashSecret(req.Token), now, d, func(f *store.Fleet) (string, error) {
		cert, err := s.keys.SignHostCert(pub, f.Name, req.Name, now, hostCertValidity)
		if err != nil {
			return "", fmt.Errorf("signing the host certificate: %w", err)
		}
		fleet, hostCert = f.Name, authorizedKey(cert)
		return hostCert, nil
	})
	if err != nil {
		herr := s.enrollError(c, req, fleet, err)
		if herr == nil {
			forgive() // our failure, not the caller's
			return resp, fmt.Errorf("enrolling device %s: %w", req.Name, err)
		}
		if herr.code == apitype.CodeConflict {
			forgive() // the token was good
		}
		return resp, herr
	}
	forgive()
	d.FleetName = fleet
	s.metrics.enrollments.Inc()
	s.logger.Info("device enrolled", "request_id", requestID(c.ctx), "fleet", fleet, "device", d.Name, "device_id", d.ID, "remote", clientAddr(c.r))
	return apitype.EnrollResponse{
		Device:         apiDevice(d),
		HostCert:       hostCert,
		ControlKey:     s.keys.ControlPublicKey(),
		UserCA:         s.keys.UserCAPublicKey(),
		HostCA:         s.keys.HostCAPublicKey(),
		TLSFingerprint: s.keys.TLSFingerprint(),
		BrokerURL:      s.brokerURL,
		RelayAddr:      s.relayAddr,
	}, nil
}

// enrollError turns the store's refusals into answers for the device's
// owner (and counts them); nil means the failure was the server's.
func (s *Server) enrollError(c *call, req *apitype.EnrollRequest, fleet string, err error) *httpError {
	const newToken = "ask for a new one with `porthole enroll-token create`"
	var (
		reason string
		herr   *httpError
	)
	switch {
	case errors.Is(err, store.ErrNotFound):
		reason = reasonUnknownToken
		herr = unauthenticated("this enrollment token is not valid (typo, or it was deleted); check it, or %s", newToken)
	case errors.Is(err, store.ErrTokenExpired):
		reason = reasonExpired
		herr = errorf(http.StatusUnauthorized, apitype.CodeTokenExpired, "this enrollment token has expired; %s", newToken)
	case errors.Is(err, store.ErrTokenUsedUp):
		reason = reasonUsedUp
		herr = errorf(http.StatusUnauthorized, apitype.CodeTokenUsedUp, "this enrollment token has been used as many times as it allows; %s", newToken)
	case errors.Is(err, store.ErrConflict):
		reason = reasonNameTaken
		herr = conflict("a device named %s is already enrolled in %s; choose another name, or have a fleet owner delete the old one", req.Name, inFleet(fleet))
	default:
		return nil
	}
	s.enrollRefused(c, req, fleet, reason)
	return herr
}

func inFleet(fleet string) string {
	if fleet == "" {
		return "this token's fleet"
	}
	return "fleet " + fleet
}

// enrollRefused counts, logs and audits a refused enrollment (refusals by
// the rate limit only count and log). fleet is the token's, when known.
func (s *Server) enrollRefused(c *call, req *apitype.EnrollRequest, fleet, reason string) {
	s.metrics.enrollFails.WithLabelValues(reason).Inc()
	s.logger.Info("enrollment refused", "request_id", requestID(c.ctx), "device", req.Name, "reason", reason, "remote", clientAddr(c.r))
	if reason != reasonRateLimited {
		s.record(c, audit.Event{Kind: audit.EnrollmentRefused, Actor: audit.Anonymous(req.Name), Fleet: fleet,
			Detail: map[string]string{"device": req.Name, "reason": reason, "remote": clientAddr(c.r)}})
	}
}

// parseDeviceKey checks that s is one plain ed25519 public key in
// authorized_keys format.
func parseDeviceKey(s string) (ssh.PublicKey, error) {
	if strings.TrimSpace(s) == "" {
		return nil, badRequest("public_key is required: the device's ed25519 public key in authorized_keys format")
	}
	pub, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil || len(options) > 0 || len(strings.TrimSpace(string(rest))) > 0 {
		return nil, badRequest("public_key is not one public key in authorized_keys format (\"ssh-ed25519 AAAA...\")")
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		return nil, badRequest("public_key is a %s key; devices use ed25519 keys", pub.Type())
	}
	return pub, nil
}

// authorizedKey formats a key or certificate as one authorized_keys line
// without the newline.
func authorizedKey(pub ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
}
