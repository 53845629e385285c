package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/humanize"
)

// closeWords says, for each reason a session closes for, why it closed in
// a sentence about device: what happened and, where the engineer can do
// something, what to do. Every control.CloseReason has its words here.
var closeWords = map[control.CloseReason]func(s apitype.Session, device string) string{
	control.CloseEngineer:  engineerClosedWords,
	control.CloseOnCommand: engineerClosedWords, // the server records it as engineer_closed
	control.CloseDeviceUnreachable: func(s apitype.Session, device string) string {
		within := "in time"
		if !s.ClosedAt.IsZero() && !s.CreatedAt.IsZero() {
			within = "within " + humanize.Duration(s.ClosedAt.Sub(s.CreatedAt).Round(time.Second))
		}
		return fmt.Sprintf("%s did not answer %s: it may have just gone offline", device, within)
	},
	control.CloseIdleTimeout: func(s apitype.Session, device string) string {
		return fmt.Sprintf("the session on %s closed after %s without input (its idle timeout)", device, humanize.Duration(time.Duration(s.IdleTimeoutS)*time.Second))
	},
	control.CloseMaxDuration: func(s apitype.Session, device string) string {
		return fmt.Sprintf("the session on %s reached its longest allowed duration (%s) and closed", device, humanize.Duration(time.Duration(s.MaxDurationS)*time.Second))
	},
	control.CloseControlUnavailable: about("the server could not reach %s over the control channel; try again in a moment"),
	control.CloseUnsupported:        about("the agent on %s cannot open sessions: it needs a newer porthole-agent"),
	control.CloseNotRecorded:        about("%s closed the session because it could not record it (is its disk full?)"),
	control.CloseRelayUnreachable:   about("%s could not reach the Porthole relay: its network may block the relay's port; tell your operator"),
	control.CloseRelayRefused: func(s apitype.Session, device string) string {
		return fmt.Sprintf("the Porthole relay refused %s's login or its session (a device deleted, or enrolled again, is refused; `porthole audit --device %s.%s` shows the relay's reason); tell your operator",
			device, device, s.Fleet)
	},
	control.CloseRelayBusy:          about("the Porthole relay turned %s away for now (too many connections at once, or it could not check the device just now); try again in a moment, or tell your operator if it keeps happening"),
	control.CloseRelayDisconnected:  about("%s lost its connection to the relay; try again when it is back online"),
	control.CloseDeviceDisconnected: about("%s dropped off the relay without a word (restarted, or cut off); try again when it is back online"),
	control.CloseRelayLost:          about("the relay node carrying the session on %s stopped answering; run the command again to get a session on a live relay"),
	control.CloseAgentStopping:      about("porthole-agent on %s is shutting down; try again when it is back online"),
	control.CloseInterrupted:        about("porthole-agent on %s stopped before the session ended (a crash or a power cut); try again when it is back online"),
	control.CloseDeviceClosed:       about("%s closed the session without saying why"),
	control.CloseNoConsent:          about("%s needs its owner's support code — ask them to run `porthole-agent request`"),
	control.CloseDenied: func(apitype.Session, string) string {
		return "the owner denied the request"
	},
	control.CloseConsentTimeout: about("the owner of %s did not answer in time, so the request was denied"),
	control.CloseRevoked:        about("the owner of %s ended this session"),
	control.CloseConsentExpired: about("the owner's support window on %s ended, and this session with it; ask them to run `porthole-agent request` again"),
	control.CloseWrongCodes:     about("%s closed its support window after five wrong support codes; ask its owner to run `porthole-agent request` again"),
	control.CloseAgentOutdated: func(s apitype.Session, device string) string {
		return fmt.Sprintf("%s refused the session: its porthole-agent is older than fleet %s's policy and cannot apply it; update porthole-agent on %s", device, s.Fleet, device)
	},
	control.CloseUserRemoved: func(s apitype.Session, device string) string {
		return fmt.Sprintf("an administrator or an owner of fleet %s took away your access (your account was deleted or reset, or you lost your role in %s), which ended this session on %s", s.Fleet, s.Fleet, device)
	},
	control.CloseFourEyesDenied: func(s apitype.Session, device string) string {
		return fmt.Sprintf("another engineer of fleet %s refused this session on %s (the fleet needs a second engineer to approve each session)", s.Fleet, device)
	},
	control.CloseApproverRemoved: func(s apitype.Session, device string) string {
		return fmt.Sprintf("%s, who approved this session on %s, lost their access to fleet %s (their account was deleted or reset, or their role taken away), and their approval with it; ask another engineer of %s to approve it again", s.ApprovedBy, device, s.Fleet, s.Fleet)
	},
	control.CloseFourEyesTimeout: func(s apitype.Session, device string) string {
		return fmt.Sprintf("no second engineer of fleet %s approved this session on %s in time (the fleet needs one to approve each session); ask a colleague to watch `porthole requests`, then try again", s.Fleet, device)
	},
}

// about is words that name only the device, at format's one %s.
func about(format string) func(apitype.Session, string) string {
	return func(_ apitype.Session, device string) string { return fmt.Sprintf(format, device) }
}

func engineerClosedWords(s apitype.Session, device string) string {
	return fmt.Sprintf("the session on %s was closed (`porthole sessions --device %s.%s` shows it)", device, device, s.Fleet)
}

// sessionEndWords says why a session closed, in a sentence about device.
// A reason this CLI does not know (a newer server's or agent's) is named
// as given.
func sessionEndWords(s apitype.Session, device string) string {
	if s.CloseReason == "" {
		return fmt.Sprintf("the session on %s closed", device)
	}
	if words, ok := closeWords[control.CloseReason(s.CloseReason)]; ok {
		return words(s, device)
	}
	return fmt.Sprintf("%s closed the session (%s)", device, safe(strings.ReplaceAll(s.CloseReason, "_", " ")))
}
