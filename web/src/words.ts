// The words for a session's state and the reason it closed, shared by
// the pages that list sessions and the terminal's page, which imports
// nothing else of them (it loads only what it needs: docs/web.md, "The
// browser terminal").

// The words for each reason a session closes for (control.CloseReasons;
// the CLI's longer sentences are in cli/closewords.go). A Go test in
// package web keeps this table complete.
export const closeWords: Record<string, string> = {
  closed: "closed by the engineer",
  engineer_closed: "closed by the engineer",
  idle_timeout: "idle too long",
  max_duration: "reached its longest allowed duration",
  relay_unreachable: "the device could not reach the relay",
  relay_refused: "the relay refused the device",
  relay_busy: "the relay was too busy",
  relay_disconnected: "the device lost the relay",
  agent_stopping: "the device's agent was shutting down",
  unsupported: "the device's agent is too old for sessions",
  not_recorded: "the device could not record it",
  interrupted: "the device's agent stopped mid-session",
  no_consent: "the owner had not opened the way",
  consent_expired: "the owner's support window ended",
  wrong_codes: "five wrong support codes",
  revoked: "ended by the device's owner",
  denied: "denied by the owner",
  consent_timeout: "the owner did not answer in time",
  device_unreachable: "the device did not answer",
  control_unavailable: "the server could not reach the device",
  device_disconnected: "the device dropped off the relay",
  relay_lost: "the relay node carrying it stopped answering",
  device_closed: "closed by the device, without a reason",
  agent_outdated: "the device's agent is too old for the fleet's policy",
  user_removed: "the engineer's access was taken away",
  four_eyes_denied: "a second engineer refused it (four-eyes)",
  four_eyes_timeout: "no second engineer approved it in time (four-eyes)",
  approver_removed: "the engineer who approved it lost their access (four-eyes)",
};

export const stateWords: Record<string, string> = {
  requested: "requested",
  waiting_consent: "waiting for the owner",
  connecting: "connecting",
  active: "active",
  closed: "closed",
};
