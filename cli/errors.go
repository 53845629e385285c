package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/proxydial"
)

// userError is an error already put in words for the user; explain leaves
// it alone. It keeps the cause for errors.Is.
type userError struct {
	msg string
	err error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

// explain turns what went wrong talking to the server into a sentence that
// says what happened and what to type next.
func (a *app) explain(ctx context.Context, err error) error {
	var ue *userError
	if errors.As(err, &ue) {
		return err
	}
	server := a.target.server
	host := server
	if u, perr := url.Parse(server); perr == nil && u.Host != "" {
		host = u.Host
	}
	say := func(format string, args ...any) error {
		return &userError{msg: fmt.Sprintf(format, args...), err: err}
	}
	var (
		apiErr    *apiclient.Error
		unknownCA x509.UnknownAuthorityError
		badHost   x509.HostnameError
		invalid   x509.CertificateInvalidError
		dnsErr    *net.DNSError
		netErr    net.Error
		urlErr    *url.Error
		proxyErr  *proxydial.Error
	)
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == apitype.CodeUnauthenticated && a.target.tokenFromEnv:
		return say("%s refused the token in %s (it expired or was revoked): set a valid one, or unset it and run `porthole login`", server, envToken)
	case errors.As(err, &apiErr) && apiErr.Code == apitype.CodeUnauthenticated:
		return say("not logged in to %s (or your login expired): run `porthole login`", server)
	case errors.As(err, &apiErr) && apiErr.Code == apitype.CodeForbidden:
		return say("%s (ask an owner of the fleet or an administrator if you need it)", apiErr.Message)
	case errors.As(err, &apiErr):
		return say("%s", apiErr.Message)
	case errors.Is(err, context.Canceled):
		return say("interrupted")
	case errors.Is(err, apiclient.ErrFingerprintMismatch):
		return a.viaProxy(server, certChangedError(server, a.target.fingerprint, a.presentedFingerprint(ctx, server)))
	case errors.As(err, &unknownCA), errors.As(err, &badHost):
		return say("the certificate of the Porthole server at %s is not one this system trusts, and none is pinned for it: "+
			"run `porthole login %s` to check and pin it, or set %s", host, server, envFingerprint)
	case errors.As(err, &invalid):
		return say("the certificate of the Porthole server at %s is not valid (%v): tell your operator", host, invalid)
	case errors.As(err, &proxyErr):
		// Before the network cases: a proxy that cannot be reached is
		// not a server that is down.
		return say("%s (porthole uses the proxy HTTPS_PROXY names; the hosts NO_PROXY lists are reached directly)", proxyErr.Message())
	case errors.Is(err, errConnRefused):
		return say("cannot reach the Porthole server at %s: is portholed running?", host)
	case errors.As(err, &dnsErr):
		return say("cannot find the Porthole server %s (%v): check the address, or log in again with `porthole login SERVER`", host, dnsErr)
	case errors.As(err, &netErr) && netErr.Timeout():
		return say("the Porthole server at %s did not answer in time: check your network and whether portholed is running", host)
	case errors.As(err, &urlErr):
		return say("cannot reach the Porthole server at %s: %v", host, errors.Unwrap(urlErr))
	}
	return err
}

// viaProxy adds to a changed certificate's warning the likeliest cause
// when the server is reached through a proxy: one that inspects TLS shows
// a certificate of its own.
func (a *app) viaProxy(server string, err error) error {
	ue, ok := err.(*userError)
	u, perr := url.Parse(server)
	if !ok || perr != nil || u.Host == "" {
		return err
	}
	host := apiclient.ServerAddr(u)
	proxy, perr := proxydial.FromGetenv(a.io.Getenv)(host)
	if perr != nil || proxy == nil {
		return err
	}
	return &userError{err: ue.err, msg: ue.msg + fmt.Sprintf(`
This connection goes through the proxy %s (HTTPS_PROXY): a proxy that
inspects TLS shows a certificate of its own. Ask its administrator to let
%s through untouched, or list the server in NO_PROXY if it can be reached
directly.`, proxy.Redacted(), u.Hostname())}
}

// presentedFingerprint asks the server which certificate it shows now, for
// the warning about a changed one; "" if that fails too.
func (a *app) presentedFingerprint(ctx context.Context, server string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fp, _, err := apiclient.FetchFingerprint(ctx, server, a.netDial())
	if err != nil {
		return ""
	}
	return fp
}

// relayTurnedAway says that the relay at addr closed the connection before
// the login: it is turning connections away, which says nothing of the
// device.
func relayTurnedAway(addr string, err error) error {
	return &userError{msg: fmt.Sprintf("the Porthole relay at %s closed the connection before logging you in: it is turning connections away "+
		"(too many at once, from your network or overall), or restarting; try again in a moment, or tell your operator if it keeps happening", addr), err: err}
}
