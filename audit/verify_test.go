package audit

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// memLog is a Source in memory, whose rows tests tamper with directly.
type memLog struct {
	head Head
	rows []Event
}

func (m *memLog) AuditHead(context.Context) (Head, error) { return m.head, nil }

func (m *memLog) AuditChain(_ context.Context, after int64, limit int) ([]Event, error) {
	rows := slices.Clone(m.rows)
	slices.SortStableFunc(rows, func(a, b Event) int { return int(a.Seq - b.Seq) })
	var out []Event
	for _, e := range rows {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// newMemLog appends n events as the store does.
func newMemLog(n int) *memLog {
	m := &memLog{head: Head{Hash: Genesis}}
	for i := range n {
		m.append(Event{Time: time.Unix(1_800_000_000+int64(i), 0), Kind: SessionActive, Actor: System,
			Session: "ses_" + string(rune('a'+i%26)), Detail: map[string]string{"i": strings.Repeat("x", i%5)}})
	}
	return m
}

func (m *memLog) append(e Event) {
	e.Normalize()
	e.Seal(m.head)
	m.rows = append(m.rows, e)
	m.head = Head{Seq: e.Seq, Hash: e.Hash}
}

func (m *memLog) at(seq int64) *Event {
	for i := range m.rows {
		if m.rows[i].Seq == seq {
			return &m.rows[i]
		}
	}
	panic("no row")
}

func (m *memLog) remove(seq int64) {
	m.rows = slices.DeleteFunc(m.rows, func(e Event) bool { return e.Seq == seq })
}

func TestVerifySound(t *testing.T) {
	for _, n := range []int{0, 1, 5, verifyPage, verifyPage + 3} {
		m := newMemLog(n)
		r, err := Verify(t.Context(), m, Head{})
		if err != nil || !r.OK() || r.Count != int64(n) || r.Head != m.head {
			t.Errorf("%d events: report %+v, %v; want OK with count %d and head %v", n, r, err, n, m.head)
		}
	}
}

// TestVerifyFindsTampering tampers with a sound chain of ten events in
// each way the package documents, and checks where and how Verify says it
// is broken.
func TestVerifyFindsTampering(t *testing.T) {
	forged := func(m *memLog, seq int64, prev string) Event {
		e := Event{Time: time.Unix(1_800_000_500, 0), Kind: LoginSucceeded, Actor: User("usr_x", "mallory@example.com")}
		e.Seal(Head{Seq: seq - 1, Hash: prev})
		return e
	}
	for _, tt := range []struct {
		name   string
		tamper func(m *memLog)
		anchor func(m *memLog) Head
		kind   ProblemKind
		seq    int64
	}{
		{"edited detail", func(m *memLog) { m.at(4).Detail = map[string]string{"i": "forged"} }, nil, ProblemEdited, 4},
		{"edited actor", func(m *memLog) { m.at(1).Actor = User("usr_x", "mallory@example.com") }, nil, ProblemEdited, 1},
		{"edited time", func(m *memLog) { m.at(10).Time = m.at(10).Time.Add(-time.Hour) }, nil, ProblemEdited, 10},
		{"edited, hash recomputed", func(m *memLog) {
			e := m.at(4)
			e.Kind = LoginFailed
			e.Hash = e.ComputeHash()
		}, nil, ProblemBrokenLink, 5},
		{"deleted in the middle", func(m *memLog) { m.remove(5) }, nil, ProblemMissing, 5},
		{"deleted several", func(m *memLog) { m.remove(5); m.remove(6); m.remove(7) }, nil, ProblemMissing, 5},
		{"deleted the first", func(m *memLog) { m.remove(1) }, nil, ProblemMissing, 1},
		{"deleted and renumbered", func(m *memLog) {
			m.remove(5)
			for i := range m.rows {
				if m.rows[i].Seq > 5 {
					m.rows[i].Seq--
				}
			}
			m.head.Seq--
		}, nil, ProblemBrokenLink, 5},
		{"deleted from the end", func(m *memLog) { m.remove(10); m.remove(9) }, nil, ProblemTruncated, 9},
		{"deleted from the end, head rewritten", func(m *memLog) {
			m.remove(10)
			m.head = Head{Seq: 9, Hash: m.at(9).Hash}
		}, func(m *memLog) Head { return Head{Seq: 10, Hash: m.head.Hash} }, ProblemAnchor, 10},
		{"inserted at the end, head moved", func(m *memLog) {
			e := forged(m, 11, strings.Repeat("f", 64))
			m.rows = append(m.rows, e)
			m.head = Head{Seq: 11, Hash: e.Hash}
		}, nil, ProblemBrokenLink, 11},
		{"inserted beyond the head", func(m *memLog) {
			m.rows = append(m.rows, forged(m, 11, m.head.Hash))
		}, nil, ProblemInserted, 11},
		{"inserted in the middle, renumbered", func(m *memLog) {
			for i := range m.rows {
				if m.rows[i].Seq >= 5 {
					m.rows[i].Seq++
				}
			}
			m.rows = append(m.rows, forged(m, 5, m.at(4).Hash))
			m.head.Seq++
		}, nil, ProblemBrokenLink, 6},
		{"inserted before the first", func(m *memLog) {
			m.rows = append(m.rows, forged(m, 0, Genesis))
		}, nil, ProblemInserted, 0},
		{"duplicate sequence number", func(m *memLog) {
			m.rows = append(m.rows, forged(m, 5, m.at(4).Hash))
		}, nil, ProblemInserted, 5},
		{"head edited", func(m *memLog) { m.head.Hash = strings.Repeat("e", 64) }, nil, ProblemHead, 10},
		{"first row's previous hash", func(m *memLog) {
			e := m.at(1)
			e.PrevHash = strings.Repeat("1", 64)
			e.Hash = e.ComputeHash()
		}, nil, ProblemBrokenLink, 1},
		{"whole tail rewritten, anchor kept elsewhere", func(m *memLog) {
			// A consistent rewrite from event 3 on passes every check
			// but the anchor's.
			tail := slices.Clone(m.rows[2:])
			m.rows = m.rows[:2]
			m.head = Head{Seq: 2, Hash: m.at(2).Hash}
			for _, e := range tail {
				e.Detail = map[string]string{"i": "rewritten"}
				m.append(e)
			}
		}, func(m *memLog) Head { return Head{Seq: 6, Hash: strings.Repeat("6", 64)} }, ProblemAnchor, 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemLog(10)
			var anchor Head
			if tt.anchor != nil {
				anchor = tt.anchor(m)
			}
			tt.tamper(m)
			r, err := Verify(t.Context(), m, anchor)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() {
				t.Fatalf("Verify found nothing wrong (count %d)", r.Count)
			}
			if r.Problem.Kind != tt.kind || r.Problem.Seq != tt.seq {
				t.Errorf("problem %s at %d (%s); want %s at %d", r.Problem.Kind, r.Problem.Seq, r.Problem.Message, tt.kind, tt.seq)
			}
			if r.Problem.Message == "" {
				t.Error("the problem says nothing")
			}
		})
	}
}

// TestVerifyAnchor: a head recorded earlier verifies while the chain holds
// it, however much was appended since.
func TestVerifyAnchor(t *testing.T) {
	m := newMemLog(5)
	anchor := m.head
	for range 3 {
		m.append(Event{Kind: LoginSucceeded, Actor: System, Time: time.Unix(1_800_001_000, 0)})
	}
	r, err := Verify(t.Context(), m, anchor)
	if err != nil || !r.OK() || r.Count != 8 {
		t.Errorf("report %+v, %v; want OK, 8 events", r, err)
	}
}

// TestVerifyIgnoresConcurrentAppends: events appended after Verify read the
// head (beyond it, with the head moved on) are no problem.
func TestVerifyIgnoresConcurrentAppends(t *testing.T) {
	m := newMemLog(3)
	src := &racingSource{memLog: m}
	r, err := Verify(t.Context(), src, Head{})
	if err != nil || !r.OK() || r.Count != 3 {
		t.Errorf("report %+v, %v; want OK with the 3 events before the head", r, err)
	}
}

// racingSource appends an event right after its head is first read.
type racingSource struct {
	*memLog
	raced bool
}

func (s *racingSource) AuditHead(ctx context.Context) (Head, error) {
	h, _ := s.memLog.AuditHead(ctx)
	if !s.raced {
		s.raced = true
		s.append(Event{Kind: LoginSucceeded, Actor: System, Time: time.Unix(1_800_002_000, 0)})
	}
	return h, nil
}
