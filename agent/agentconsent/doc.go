// Package agentconsent is the owner's consent on a running agent: every
// session must pass it before the relay is dialled, in the mode the
// owner's agent.yaml alone sets (Config: manual with a support window and
// its code, approve, auto; see Consent for the steps), raised for one
// session, never lowered, by the consent floor its fleet's policy put in
// the signed open command (Stricter). The data path asks
// it (Consent.Admit, CheckCode for the code, SessionUp and SessionEnded),
// and ends a session whose consent ended with an *End as its context's
// cause, whose words the engineer reads; the owner's socket and page drive
// it (Request, Answer, Revoke, Status).
package agentconsent
