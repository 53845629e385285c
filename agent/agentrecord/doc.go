// Package agentrecord is the agent's recorder: it writes what engineers do
// in each session to the state directory's SessionsDir (see there for the
// files), as agentssh.Recorder, within the owner's caps and retention
// (Config, the recordings section of agent.yaml), and fails a session
// closed once it cannot record it. The running agent opens it once (Open)
// and ends each session's recording as the session ends
// (Recordings.SessionEnded); a session it cannot record is closed through
// the hook OnFail sets. ListSessions, FindSession and Replay are the
// owner's side, which only read the directory, whether the agent runs or
// not.
package agentrecord
