// Package agentupload is the agent's uploader: it sends every session's
// recording (agentrecord.SessionsDir) to the server, for the engineers and
// for the owner's link (see OwnerLink), during the session and after it:
//
//  1. meta.json whole, again whenever it changed;
//  2. events.jsonl and each asciicast as chunks appended at the offset the
//     server holds, which upload.json in the session's directory keeps, so
//     that an upload goes on where it stopped, after a dropped connection
//     or an agent restart; a chunk the server already has is answered with
//     its size, a gap with the size to resume from;
//  3. once meta.json says the session ended and everything is sent, the
//     recording is completed, which the server's audit log records.
//
// Sessions are looked at when the recorder says they grew or ended
// (Uploader.Changed), when the agent starts (so that what a previous run
// could not send goes now) and every RescanEvery. A failure to reach the
// server is retried with backoff; what the server refuses for good (a file
// past its caps, a session it does not give this device) is noted in
// upload.json and not sent again. The upload never holds up a session:
// Changed only marks it, and one goroutine (Uploader.Start) does the
// sending. Retention deletes recordings whether or not they were sent: the
// owner's disk comes first.
//
// The uploader also keeps the owner's link (OwnerLinkFile), renewing it
// before it expires; ReadOwnerLink is the owner's side.
package agentupload
