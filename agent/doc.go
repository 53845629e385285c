// Package agent is the device side of Porthole: it keeps the device's state
// directory (its own SSH key, its host certificate and what it learned at
// enrollment), enrolls the device with a Porthole server, and runs it on
// the control channel, obeying only the commands it verifies.
//
// Enrollment flow: the device makes an ed25519 key in its state directory
// (the key never leaves it), sends the public half with a one-time
// enrollment token to POST /api/v1/enroll over TLS (pinned by fingerprint
// when the server's certificate is self-signed), checks that the host
// certificate it gets back is for its own key and signed by the host CA the
// server names, and only then saves the certificate and the enrollment
// record. The record is written last: its presence means "enrolled".
//
// Running: New composes the running agent from its parts and Agent.Run
// runs them, waiting for every goroutine it starts. The state directory is
// package agentstate's (Load); the event log, agent.log, package
// agentlog's, opened once by New and handed to every part that records.
// The control channel, Run, connects to the MQTT broker the enrollment
// names (or the one the owner's Config names) and follows the protocol of
// package control; its comment lists the MQTT choices. The owner's
// configuration holds only the keys the agent acts on (see Config).
//
// Recording: package agentrecord writes what engineers do in each session
// to the state directory, for the owner (agentrecord.ListSessions,
// agentrecord.Replay; agentlog.Read for agent.log) and for the upload to
// the server; agentrecord.SessionsDir documents the files, which only grow
// by whole lines, so package agentupload, the uploader, sends them by
// offset (and keeps the owner's link, agentupload.ReadOwnerLink). Agent
// ties the recorder to the sessions: each recording ends with its session,
// and a session that cannot be recorded is closed. Both retry with
// agentretry's backoff, as the control channel does.
//
// Consent: every session must pass the owner's consent, package
// agentconsent, before the relay is dialled, in the mode the owner's config
// alone sets (manual with a support window and code, approve, auto; see
// agentconsent.Consent for the steps). The owner drives it through the
// running agent's unix socket or its local page, package agentowner
// (agentowner.Server, agentowner.Client): request, status, approve, deny
// and revoke, the kill switch that ends every session at once. Each part
// owns its section of the owner's Config (agentrecord.Config,
// agentconsent.Config, agentowner.Config); the file's keys are as they
// were.
package agent
