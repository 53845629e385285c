package control

// CloseReason says why a session ended. It is one word on the wire: the
// device reports it in "tunnel_down <session> <reason>", the server records
// it as the session's close reason (the API's close_reason, the audit
// log's session_closed), and the device keeps it with its recording. The
// values are stable: old agents and stored sessions carry them, so a
// constant's value never changes. A reason from the wire that is none of
// these (a newer agent's) is kept as given.
type CloseReason string

// Reasons the device gives in tunnel_down (the agent's tunnels and its
// data path).
const (
	// CloseOnCommand: the server said close. The server records it as
	// CloseEngineer: it tells the device to close an open session only
	// for an engineer, and records a limit of its own before it tells
	// the device.
	CloseOnCommand CloseReason = "closed"
	// CloseIdleTimeout: no engineer input for the session's idle
	// timeout, by the agent's own timer or the server's sweep.
	CloseIdleTimeout CloseReason = "idle_timeout"
	// CloseMaxDuration: the session was open for its maximum duration,
	// by the agent's timer or the server's sweep.
	CloseMaxDuration CloseReason = "max_duration"
	// CloseRelayUnreachable: the agent could not dial the relay.
	CloseRelayUnreachable CloseReason = "relay_unreachable"
	// CloseRelayRefused: the relay refused the device's login or its
	// forward (a device deleted or enrolled again is refused).
	CloseRelayRefused CloseReason = "relay_refused"
	// CloseRelayBusy: the relay turned the device away for now: it is
	// overloaded, or it could not check the device just then.
	CloseRelayBusy CloseReason = "relay_busy"
	// CloseRelayDisconnected: the device's connection to the relay
	// dropped during the session.
	CloseRelayDisconnected CloseReason = "relay_disconnected"
	// CloseAgentStopping: the agent is shutting down; it also closes the
	// owner's support window, and its support request, for this reason.
	CloseAgentStopping CloseReason = "agent_stopping"
	// CloseUnsupported: the agent cannot hold sessions (one built without
	// a data path answers every open with it).
	CloseUnsupported CloseReason = "unsupported"
	// CloseNotRecorded: the agent could not write the command to its
	// event log, and the owner must be able to see everything the device
	// was told to do.
	CloseNotRecorded CloseReason = "not_recorded"
	// CloseInterrupted: the agent stopped (a crash, a power cut) before
	// the session ended, and found its recording open when it started
	// again. Only in the device's own recordings: never in tunnel_down.
	CloseInterrupted CloseReason = "interrupted"
)

// Reasons the device gives in tunnel_down for its owner's consent (the
// agent's consent modes: manual with a support window and code, approve
// with the owner's answer). Which of them say what the owner decided is
// IsConsent's to tell.
const (
	// CloseNoConsent: manual mode, and no support window is open, so
	// the device refused the session.
	CloseNoConsent CloseReason = "no_consent"
	// CloseConsentExpired: manual mode: the support window the session
	// was in ran its time, and the session ended with it.
	CloseConsentExpired CloseReason = "consent_expired"
	// CloseWrongCodes: manual mode: five wrong support codes closed the
	// support window, and its sessions with it.
	CloseWrongCodes CloseReason = "wrong_codes"
	// CloseRevoked: the device's owner ended the session
	// (porthole-agent revoke, or End session now on the local page).
	CloseRevoked CloseReason = "revoked"
	// CloseDenied: approve mode: the owner said no.
	CloseDenied CloseReason = "denied"
	// CloseConsentTimeout: approve mode: the owner did not answer within
	// the device's approval timeout. The server closes a session for it
	// too when the session waited for consent longer than its own
	// consent timeout, which is longer than any device's: the device went
	// silent.
	CloseConsentTimeout CloseReason = "consent_timeout"
)

// Reasons only the server gives (the session manager and the daemon).
const (
	// CloseEngineer: an engineer (or an operator) closed the session,
	// or the device closed it on the server's word (CloseOnCommand).
	CloseEngineer CloseReason = "engineer_closed"
	// CloseDeviceUnreachable: the device did not connect within the
	// server's connect timeout.
	CloseDeviceUnreachable CloseReason = "device_unreachable"
	// CloseControlUnavailable: the server could not send the open
	// command (the control channel is down), or could not certify the
	// engineer's key or record the session before sending it.
	CloseControlUnavailable CloseReason = "control_unavailable"
	// CloseDeviceDisconnected: the device's relay connection dropped and
	// the device said nothing (tunnel_down) within a few seconds, so the
	// server closed its sessions itself.
	CloseDeviceDisconnected CloseReason = "device_disconnected"
	// CloseDeviceClosed: the server's word for a tunnel_down that gave no
	// reason.
	CloseDeviceClosed CloseReason = "device_closed"
	// CloseRelayLost: the relay node the session was placed on stopped
	// beating (it died, or lost the database) and neither end said the
	// session was over.
	CloseRelayLost CloseReason = "relay_lost"
	// CloseAgentOutdated: the device refused the open command as
	// malformed, which a device does with a command carrying a field its
	// agent predates: the fleet's policy (Command.Policy). The session
	// never opened; the device's agent needs updating.
	CloseAgentOutdated CloseReason = "agent_outdated"
	// CloseUserRemoved: the engineer's account was deleted or reset, or
	// lost the role in the device's fleet that lets it reach devices.
	CloseUserRemoved CloseReason = "user_removed"
)

// Reasons the server gives for the fleet's four-eyes rule: a session in
// such a fleet waits for a second engineer of the fleet to approve it
// before its device is asked.
const (
	// CloseFourEyesDenied: a second engineer refused the session (or
	// closed its approval request).
	CloseFourEyesDenied CloseReason = "four_eyes_denied"
	// CloseFourEyesTimeout: no second engineer approved the session in
	// time.
	CloseFourEyesTimeout CloseReason = "four_eyes_timeout"
	// CloseApproverRemoved: the second engineer who approved the session
	// lost their access (their account deleted or reset, or their role in
	// the fleet taken away), and with it the approval: the fleet's rule
	// wants two engineers who may reach the device.
	CloseApproverRemoved CloseReason = "approver_removed"
)

// TunnelDown is the state message saying session ended for r.
func TunnelDown(session string, r CloseReason) State {
	return State{Kind: StateTunnelDown, Session: session, Reason: string(r)}
}

// CloseReasons is every CloseReason this package names, a new slice each
// call.
func CloseReasons() []CloseReason {
	return []CloseReason{
		CloseOnCommand, CloseIdleTimeout, CloseMaxDuration,
		CloseRelayUnreachable, CloseRelayRefused, CloseRelayBusy, CloseRelayDisconnected,
		CloseAgentStopping, CloseUnsupported, CloseNotRecorded, CloseInterrupted,
		CloseNoConsent, CloseConsentExpired, CloseWrongCodes, CloseRevoked, CloseDenied, CloseConsentTimeout,
		CloseEngineer, CloseDeviceUnreachable, CloseControlUnavailable, CloseDeviceDisconnected, CloseDeviceClosed,
		CloseRelayLost, CloseAgentOutdated, CloseUserRemoved, CloseFourEyesDenied, CloseFourEyesTimeout,
		CloseApproverRemoved,
	}
}

// IsConsent reports whether r says what the device's owner decided about
// the session, or that a wrong support code was given: the device refused
// it with no support window open (CloseNoConsent), the owner denied it or
// did not answer (CloseDenied, CloseConsentTimeout), ended it
// (CloseRevoked), or wrong codes closed the window (CloseWrongCodes). The
// server records a consent event next to such a session's close.
// CloseConsentExpired is not one: the window ran the time its owner gave
// it, as agreed.
func (r CloseReason) IsConsent() bool {
	switch r {
	case CloseNoConsent, CloseDenied, CloseConsentTimeout, CloseRevoked, CloseWrongCodes:
		return true
	}
	return false
}
