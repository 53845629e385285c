package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/proxydial"
)

// Causes of enrollment failures, for errors.Is. The errors Enroll returns
// read as sentences for the owner; these only classify them.
var (
	ErrAlreadyEnrolled = errors.New("agent: this device is already enrolled")
	ErrNameTaken       = errors.New("agent: the device name is taken in the fleet")
	ErrTokenRejected   = errors.New("agent: the enrollment token was refused")
	ErrServerUntrusted = errors.New("agent: the server's certificate is not trusted")
)

// explained is an error whose text is meant for the device's owner. It
// matches its kind (one of the Err* causes) with errors.Is and unwraps to
// the underlying error, if any.
type explained struct {
	msg   string
	kind  error
	cause error
}

func (e *explained) Error() string        { return e.msg }
func (e *explained) Unwrap() error        { return e.cause }
func (e *explained) Is(target error) bool { return target == e.kind }

// newTokenHint says where a new enrollment token comes from.
const newTokenHint = "ask a fleet owner for a new one (porthole enroll-token create)"

// explainEnrollError turns a failed enrollment call into a sentence that
// says what happened and what to do. On a pin mismatch it connects once more
// to learn the fingerprint the server presents.
func explainEnrollError(ctx context.Context, err error, opts EnrollOptions) error {
	var apiErr *apiclient.Error
	if errors.As(err, &apiErr) {
		return explainAPIError(apiErr, opts.Name)
	}
	host := opts.Server
	if u, perr := url.Parse(opts.Server); perr == nil {
		host = u.Host
	}
	if errors.Is(err, apiclient.ErrFingerprintMismatch) {
		got := "another certificate"
		if fp, _, ferr := apiclient.FetchFingerprint(ctx, opts.Server, opts.NetDial); ferr == nil {
			got = fp
		}
		return &explained{kind: ErrServerUntrusted, cause: err, msg: fmt.Sprintf(
			"the server at %s presented %s, not the pinned %s: its certificate changed, or this is not your server; check the fingerprint with whoever runs the server",
			host, got, opts.Fingerprint)}
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		// The server's actual fingerprint is not shown on purpose: if
		// someone is in the way, it would be theirs. The right one comes
		// from the server's operator.
		why := "it is not signed by an authority this system trusts (Porthole servers often use a self-signed certificate)"
		var herr x509.HostnameError
		var ierr x509.CertificateInvalidError
		switch {
		case errors.As(err, &herr):
			why = fmt.Sprintf("it is not made out to %s (%v)", host, herr)
		case errors.As(err, &ierr):
			why = fmt.Sprintf("it is not valid (%v)", ierr)
		}
		return &explained{kind: ErrServerUntrusted, cause: err, msg: fmt.Sprintf(
			"cannot trust the server's certificate at %s: %s. Pass --fingerprint sha256:... (or set PORTHOLE_FINGERPRINT) as printed by `porthole enroll-token create` or `portholed dev`",
			host, why)}
	}
	if pe, ok := errors.AsType[*proxydial.Error](err); ok {
		return &explained{cause: err, msg: pe.Message() + " (the proxy is --proxy's, else HTTPS_PROXY's)"}
	}
	if _, ok := errors.AsType[*net.OpError](err); ok && ctx.Err() == nil {
		return &explained{cause: err, msg: err.Error() + "; if this network lets out only through a proxy, give it with --proxy http://HOST:PORT (or HTTPS_PROXY)"}
	}
	return err
}

func explainAPIError(err *apiclient.Error, name string) error {
	var kind error
	var msg string
	switch err.Code {
	case apitype.CodeConflict:
		kind = ErrNameTaken
		msg = fmt.Sprintf("a device named %s is already enrolled in this fleet; pick another --name, or ask a fleet owner to delete the old one (porthole devices rm %s)", name, name)
	case apitype.CodeTokenExpired:
		kind = ErrTokenRejected
		msg = "the enrollment token has expired; " + newTokenHint
	case apitype.CodeTokenUsedUp:
		kind = ErrTokenRejected
		msg = "the enrollment token has been used as many times as it allows; " + newTokenHint
	case apitype.CodeNotFound, apitype.CodeUnauthenticated:
		kind = ErrTokenRejected
		msg = "the server does not know this enrollment token; check that it was copied whole, or " + newTokenHint
	case apitype.CodeRateLimited:
		msg = "the server refused: too many enrollment attempts from here; wait a minute and try again"
	default:
		msg = "the server refused the enrollment: " + err.Message
	}
	return &explained{kind: kind, cause: err, msg: msg}
}
