package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// ErrNoHead is wrapped by a Source's AuditHead when the head is missing
// altogether, which only tampering does; Verify reports it as ProblemHead.
var ErrNoHead = errors.New("audit: the chain's head is missing")

// Source is what Verify reads: the store implements it.
type Source interface {
	// AuditHead returns the chain's head as the store recorded it with
	// the last append.
	AuditHead(ctx context.Context) (Head, error)
	// AuditChain returns up to limit events with sequence numbers above
	// after, in ascending order of sequence number, as stored.
	AuditChain(ctx context.Context, after int64, limit int) ([]Event, error)
}

// ProblemKind says what kind of tampering a broken chain looks like.
type ProblemKind string

// Kinds of problems; see the package documentation.
const (
	ProblemMissing    ProblemKind = "missing"     // a gap in the sequence numbers: rows deleted
	ProblemBrokenLink ProblemKind = "broken_link" // an event does not follow the one before it
	ProblemEdited     ProblemKind = "edited"      // an event's contents do not match its hash
	ProblemInserted   ProblemKind = "inserted"    // a sequence number repeats or goes back
	ProblemTruncated  ProblemKind = "truncated"   // the chain ends before its recorded head
	ProblemHead       ProblemKind = "head"        // the recorded head does not match the chain
	ProblemAnchor     ProblemKind = "anchor"      // the chain no longer holds a head recorded earlier
)

// Problem is where and how a chain is broken.
type Problem struct {
	Kind ProblemKind
	// Seq is the sequence number of the first event found wrong (for
	// ProblemMissing and ProblemTruncated, the first one missing).
	Seq int64
	// Message says what was found and what it means, for people.
	Message string
}

func (p *Problem) Error() string { return p.Message }

// Report is the outcome of Verify.
type Report struct {
	// Count is how many events were checked and found sound, from the
	// first: all of them when the chain is sound, those before the
	// problem otherwise.
	Count int64
	// Head is the chain's head as recorded; with no problem it is the
	// last event's sequence number and hash, the value to record
	// elsewhere.
	Head Head
	// Problem is the first break found, or nil.
	Problem *Problem
}

// OK reports whether the chain verified.
func (r *Report) OK() bool { return r.Problem == nil }

// verifyPage is how many events Verify reads at a time.
const verifyPage = 1000

// Verify walks the chain from the first event to the head the store
// recorded, recomputing every hash, and reports the first problem. Events
// appended while it runs (beyond the head it read first) are left for the
// next check. With anchor, a head recorded earlier (zero Seq: none), it
// also checks that the chain still holds that event with that hash.
//
// The error is for failures to read; a broken chain is a Report with a
// Problem.
func Verify(ctx context.Context, src Source, anchor Head) (*Report, error) {
	head, err := src.AuditHead(ctx)
	if errors.Is(err, ErrNoHead) {
		return &Report{Problem: &Problem{Kind: ProblemHead, Seq: 1,
			Message: "the chain's head is missing: the audit tables were tampered with, and the server refuses audited changes until it is restored"}}, nil
	} else if err != nil {
		return nil, fmt.Errorf("audit: reading the chain's head: %w", err)
	}
	r := &Report{Head: head}
	fail := func(kind ProblemKind, seq int64, format string, args ...any) (*Report, error) {
		r.Problem = &Problem{Kind: kind, Seq: seq, Message: fmt.Sprintf(format, args...)}
		return r, nil
	}
	if anchor.Seq > head.Seq {
		return fail(ProblemAnchor, head.Seq+1,
			"the chain ends at event %d but a head recorded earlier names event %d: events were deleted from the end and the head rewritten to match",
			head.Seq, anchor.Seq)
	}
	// The walk starts after 0: a row numbered below 1 would never be
	// read by it, yet would be listed.
	if low, err := src.AuditChain(ctx, math.MinInt64, 1); err != nil {
		return nil, fmt.Errorf("audit: reading the first event: %w", err)
	} else if len(low) > 0 && low[0].Seq < 1 {
		return fail(ProblemInserted, low[0].Seq,
			"event %d has a sequence number below 1: it was added behind the server's back", low[0].Seq)
	}
	prev := Head{Hash: Genesis}
walk:
	for prev.Seq < head.Seq {
		evs, err := src.AuditChain(ctx, prev.Seq, verifyPage)
		if err != nil {
			return nil, fmt.Errorf("audit: reading events after %d: %w", prev.Seq, err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			if e.Seq > head.Seq {
				break walk // appended after the head was read, or a gap up to the head
			}
			switch {
			case e.Seq <= prev.Seq:
				return fail(ProblemInserted, e.Seq,
					"event %d comes after event %d: an event was inserted out of order", e.Seq, prev.Seq)
			case e.Seq > prev.Seq+1:
				return fail(ProblemMissing, prev.Seq+1, "%s missing: deleted from the log", span(prev.Seq+1, e.Seq-1))
			case e.PrevHash != prev.Hash:
				return fail(ProblemBrokenLink, e.Seq,
					"event %d does not follow event %d (it names a different previous hash): an event was inserted or deleted there and the rest renumbered, or event %d was rewritten along with its hash",
					e.Seq, prev.Seq, prev.Seq)
			case e.ComputeHash() != e.Hash:
				return fail(ProblemEdited, e.Seq,
					"event %d (%s at %s) does not match its hash: it was edited after it was written",
					e.Seq, e.Kind, e.Time.UTC().Format("2006-01-02 15:04:05Z"))
			case anchor.Seq == e.Seq && anchor.Hash != e.Hash:
				return fail(ProblemAnchor, e.Seq,
					"event %d's hash is %s, not %s as recorded earlier: the chain was rewritten from event %d or before, hashes and all",
					e.Seq, e.Hash, anchor.Hash, e.Seq)
			}
			prev = Head{Seq: e.Seq, Hash: e.Hash}
			r.Count++
		}
		if len(evs) < verifyPage {
			break
		}
	}
	switch {
	case prev.Seq < head.Seq:
		return fail(ProblemTruncated, prev.Seq+1,
			"the log ends at event %d but its head says %d: %s deleted from the end", prev.Seq, head.Seq, span(prev.Seq+1, head.Seq))
	case prev.Hash != head.Hash:
		return fail(ProblemHead, head.Seq,
			"the chain's recorded head (%s) does not match its last event (%s): the head was edited, or the last event replaced",
			head, prev)
	}
	// Events beyond the head are either appended since it was read, or
	// written behind the store's back: read the head again to tell.
	if after, err := src.AuditChain(ctx, head.Seq, 1); err != nil {
		return nil, fmt.Errorf("audit: reading events after %d: %w", head.Seq, err)
	} else if len(after) > 0 {
		now, err := src.AuditHead(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: reading the chain's head: %w", err)
		}
		if now.Seq < after[0].Seq {
			return fail(ProblemInserted, after[0].Seq,
				"event %d lies beyond the chain's head (%d): it was added behind the server's back", after[0].Seq, now.Seq)
		}
	}
	return r, nil
}

// span names the events from lo to hi.
func span(lo, hi int64) string {
	if lo == hi {
		return fmt.Sprintf("event %d is", lo)
	}
	return fmt.Sprintf("events %d to %d are", lo, hi)
}
