// Package audit is the server's tamper-evident audit log: the events it
// records (who did what to which fleet, device and session), the hash chain
// that links them, and the check that walks the chain and says where and how
// it was broken.
//
// # Events
//
// An Event has a sequence number (1, 2, 3, … with no gaps), a time, a Kind
// (login_succeeded, session_closed, …), an Actor (a user, a device, or the
// system itself), the fleet, device and session it concerns (each may be
// empty), and a small Detail map of strings. Kinds are plain lower_snake
// strings: a new kind is one more constant here, or none at all, since any
// name that matches ValidKind is accepted.
//
// Events are written by the store (package store), in the same database
// transaction as the change they record: store.WithAudit attaches events to
// a write's context, and a write that fails or changes nothing records none.
// Events that go with no change (a refused login, a refused relay request)
// are appended on their own with Store.AppendAudit. A crash can therefore
// never keep a change and lose its event, nor the other way round.
//
// # The chain
//
// Each event carries PrevHash, the Hash of the event before it (Genesis, 64
// zeros, for the first), and its own Hash: the lower-case hex SHA-256 of its
// canonical encoding (Canonical), which covers every field, PrevHash
// included. The encoding is a fixed sequence of netstrings ("<length>:<bytes>,")
// after the tag "porthole-audit-v1": sequence number and time (unix
// milliseconds) in decimal, kind, actor kind, actor ID, actor name, fleet ID,
// fleet name, device ID, device name, session ID, the number of detail
// entries followed by each key and value in byte order of the keys, and
// PrevHash. Lengths make it unambiguous; the fixed order and sorted keys make
// it independent of how the database returns the row. A golden test freezes
// it: changing it would break every stored chain.
//
// The store keeps the chain's head (last sequence number and hash) in a
// one-row table that each append updates in the same transaction. Appends
// are serialised on that row: SQLite's write lock (its transactions begin
// IMMEDIATE) and, on PostgreSQL, the row lock that the UPDATE of the head
// takes and holds to commit, so several server nodes append to one chain.
//
// # Verification
//
// Verify reads the head, then walks every event up to it in order,
// recomputing each hash, and reports the first Problem:
//
//   - a gap in the sequence numbers: rows were deleted (ProblemMissing);
//   - an event whose PrevHash is not the previous event's Hash: a row was
//     inserted there, or rows were deleted and the rest renumbered, or the
//     previous row was rewritten along with its hash (ProblemBrokenLink);
//   - an event whose Hash is not the hash of its contents: the row was
//     edited after it was written (ProblemEdited);
//   - a sequence number repeated, going back, below 1, or beyond the head
//     (ProblemInserted);
//   - a chain that ends before the head, or whose last hash is not the
//     head's: rows were deleted from the end (ProblemTruncated), or the head
//     itself was edited (ProblemHead);
//   - an anchor (a head recorded earlier, see below) that the chain no
//     longer contains (ProblemAnchor).
//
// # What the chain cannot prove
//
// The hashes are not secret: someone who can write to the database can
// rewrite an event and every event after it, recomputing their hashes and
// the head, and the chain will verify. What the chain guarantees is that
// such a rewrite must replace the whole tail from the first changed event
// onwards. So keep the head somewhere the database's writers cannot reach:
// `porthole audit --verify` prints it as SEQ:HASH, and given such a recorded
// head back (--anchor), it checks that the chain still contains it, which a
// rewrite of anything at or before it cannot fake.
package audit
