// Package agentowner is the owner's control of a running agent: a small
// JSON API on a unix socket (Config.Socket, mode 0660, group
// Config.SocketGroup or agentstate.OwnerGroup), which porthole-agent
// request, status, approve, deny, revoke (through Client) and the local
// page (Config.LocalUI; see page.go for how it lets in only the owner) use.
// Whoever may open the socket is the owner: the file's mode and group are
// the access control. Server drives the owner's consent (package
// agentconsent) and, for revoke, the sessions the agent runs.
//
//	GET  /v1/status          Status
//	POST /v1/request         Request -> RequestAnswer (the open window, opened or not)
//	POST /v1/approve         Answer  -> Answer (the session approved)
//	POST /v1/deny            Answer  -> Answer
//	POST /v1/revoke          -> RevokeAnswer: every session ended, the window closed
//	GET  /v1/history?n=N     the last N events of the event log (default 50), oldest first
//
// Errors answer {"error": "a sentence"} with a 4xx or 5xx status. The page
// serves the same API under /api/v1/.
package agentowner
