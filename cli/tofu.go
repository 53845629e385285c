package cli

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/porthole/porthole/apiclient"
)

// fingerprintRE is the form of a certificate pin, as apiclient.Fingerprint
// writes it.
var fingerprintRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// pinDecision is what login does about the server's certificate.
type pinDecision struct {
	pin  string // fingerprint to pin and save; "" when the system roots suffice
	note string // what to tell the user, "" for nothing
}

// decidePin is trust on first use. presented is the fingerprint of the
// certificate the server showed, systemTrusted whether the system roots
// vouch for it, pinned what was saved for this server before, and given
// what the user passed with --fingerprint (or PORTHOLE_FINGERPRINT).
//
// A certificate the user named, or the one pinned before, must match
// exactly; otherwise login stops before sending the password. A certificate
// the system trusts needs no pin (and a stale pin is dropped). Anything else
// is pinned on first sight, and the user is told to check it.
func decidePin(server, presented string, systemTrusted bool, pinned, given string) (pinDecision, error) {
	given = strings.ToLower(strings.TrimSpace(given))
	if given != "" && !fingerprintRE.MatchString(given) {
		return pinDecision{}, fmt.Errorf("fingerprint %q is not of the form sha256:<64 hex digits>", given)
	}
	switch {
	case given != "" && given != presented:
		return pinDecision{}, &userError{err: apiclient.ErrFingerprintMismatch, msg: fmt.Sprintf(
			`the Porthole server at %s presented the certificate
  %s
not the one you gave:
  %s
Someone may be intercepting the connection; nothing was sent. Check the fingerprint with your operator`,
			server, presented, given)}
	case given != "" && given == pinned:
		return pinDecision{pin: given}, nil
	case given != "":
		return pinDecision{pin: given, note: fmt.Sprintf("pinned the server's certificate %s (as given)", given)}, nil
	case systemTrusted && pinned != "" && pinned != presented:
		return pinDecision{note: fmt.Sprintf("the server's certificate changed and is now trusted by this system; dropped the old pin %s", pinned)}, nil
	case systemTrusted && pinned == "":
		return pinDecision{}, nil
	case pinned == presented:
		return pinDecision{pin: pinned}, nil
	case pinned != "":
		return pinDecision{}, certChangedError(server, pinned, presented)
	default:
		return pinDecision{pin: presented, note: fmt.Sprintf(
			"pinned the server's certificate %s (first login to this server); check it with your operator", presented)}, nil
	}
}

// certChangedError is what porthole says when a server no longer shows the
// certificate pinned for it. presented may be "" when not known. The
// command to run names no fingerprint on purpose: the right one comes from
// the operator, not from the server that just failed the check.
func certChangedError(server, pinned, presented string) error {
	if presented == "" {
		presented = "(another certificate)"
	}
	return &userError{err: apiclient.ErrFingerprintMismatch, msg: fmt.Sprintf(
		`WARNING: the certificate of the Porthole server at %s has changed.
  pinned:    %s
  presented: %s
Someone may be intercepting your connection, or the operator replaced the
certificate. Nothing was sent. Ask your operator for the server's
fingerprint, and if they confirm a new one, log in again with:
  porthole login %s --fingerprint sha256:...`, server, pinned, presented, server)}
}
