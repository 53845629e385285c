package control

import "errors"

// Reasons a command is rejected, in the order Verify checks them. They are
// stable: the agent publishes them as "rejected <reason>" and the server
// may act on them.
const (
	ReasonTooLarge     = "too_large"     // envelope over MaxEnvelopeSize
	ReasonMalformed    = "malformed"     // not a strict envelope, bad base64 or bad command JSON or fields
	ReasonBadSignature = "bad_signature" // not signed by the control key
	ReasonWrongVersion = "wrong_version" // v is not Version
	ReasonUnknownType  = "unknown_type"  // neither open nor close
	ReasonWrongFleet   = "wrong_fleet"   // addressed to another fleet
	ReasonWrongDevice  = "wrong_device"  // addressed to another device
	ReasonExpired      = "expired"       // not_after has passed
	ReasonTooFarAhead  = "too_far_ahead" // not_after is beyond MaxValidity
	ReasonReplayed     = "replayed"      // nonce seen before
	ReasonInternal     = "internal"      // the nonce store failed; nothing was accepted
)

// RejectError says why Verify refused a command. Reason is one of the
// Reason constants; Err, when set, holds the detail for the log.
type RejectError struct {
	Reason string
	Err    error
}

func (e *RejectError) Error() string {
	if e.Err == nil {
		return "control: command rejected: " + e.Reason
	}
	return "control: command rejected: " + e.Reason + ": " + e.Err.Error()
}

func (e *RejectError) Unwrap() error { return e.Err }

// RejectReason is the reason of a *RejectError in err's chain, or
// ReasonInternal for any other non-nil error, or "" for nil.
func RejectReason(err error) string {
	if err == nil {
		return ""
	}
	if re, ok := errors.AsType[*RejectError](err); ok {
		return re.Reason
	}
	return ReasonInternal
}

func reject(reason string, err error) *RejectError { return &RejectError{Reason: reason, Err: err} }
