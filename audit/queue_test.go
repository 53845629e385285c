package audit

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// appended collects what a Queue appends.
type appended struct {
	mu      sync.Mutex
	batches [][]Event
	block   chan struct{} // when set, Append waits for it
}

func (a *appended) Append(_ context.Context, evs ...Event) error {
	if a.block != nil {
		<-a.block
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batches = append(a.batches, evs)
	return nil
}

func (a *appended) all() []Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Event
	for _, b := range a.batches {
		out = append(out, b...)
	}
	return out
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestQueueRate: a burst is kept whole, then the rate applies; what was
// left out is counted in the log.
func TestQueueRate(t *testing.T) {
	var a appended
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	q := NewQueue(QueueConfig{Append: a.Append, Rate: 2, Burst: 5, Now: clk.Now})
	for range 8 { // 5 kept, 3 dropped
		q.Add(Event{Kind: RelayRefused, Actor: Anonymous("scanner")})
	}
	waitAppended(t, &a, 5)   // the channel holds Burst: let it drain
	clk.Advance(time.Second) // 2 more may come
	for range 3 {
		q.Add(Event{Kind: RelayRefused, Actor: Anonymous("scanner")})
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	var refused, dropped int
	for _, e := range a.all() {
		switch e.Kind {
		case RelayRefused:
			refused++
			if e.Time.IsZero() {
				t.Error("a queued event has no time")
			}
		case EventsDropped:
			n, err := strconv.Atoi(e.Detail["count"])
			if err != nil {
				t.Errorf("drop count %q", e.Detail["count"])
			}
			dropped += n
		}
	}
	if refused != 7 || dropped != 4 {
		t.Errorf("appended %d refusals and counted %d left out; want 7 and 4", refused, dropped)
	}
	if !errors.Is(q.Close(), ErrClosed) {
		t.Error("a second Close did not say ErrClosed")
	}
	q.Add(Event{Kind: RelayRefused, Actor: System}) // must not panic or block
}

func waitAppended(t *testing.T, a *appended, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(a.all()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d events appended within 5 s; want %d", len(a.all()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestQueueNeverBlocks: with the database stuck, Add returns at once and
// counts what does not fit.
func TestQueueNeverBlocks(t *testing.T) {
	a := appended{block: make(chan struct{})}
	q := NewQueue(QueueConfig{Append: a.Append, Rate: 1000, Burst: 4})
	done := make(chan struct{})
	go func() {
		for range 100 {
			q.Add(Event{Kind: CommandRejected, Actor: System})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Add blocked while the database was stuck")
	}
	close(a.block)
	q.Close()
	var kept int
	for _, e := range a.all() {
		if e.Kind == CommandRejected {
			kept++
		}
	}
	if kept == 0 || kept > 100 {
		t.Errorf("kept %d events", kept)
	}
}

// TestQueueFlushesSoon: an accepted event is appended without waiting for
// Close.
func TestQueueFlushesSoon(t *testing.T) {
	var a appended
	q := NewQueue(QueueConfig{Append: a.Append})
	defer q.Close()
	q.Add(Event{Kind: RelayRefused, Actor: System})
	waitAppended(t, &a, 1)
}

// TestQueueSourceShare: one source's flood is cut to its own share and
// leaves the rate to another source, whose events are all kept; the
// flood's excess is counted.
func TestQueueSourceShare(t *testing.T) {
	var a appended
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	q := NewQueue(QueueConfig{Append: a.Append, Rate: 100, Burst: 50, SourceRate: 1, SourceBurst: 3, Now: clk.Now})
	for range 1000 {
		q.AddFrom("192.0.2.1", Event{Kind: RelayRefused, Actor: Anonymous("scanner")})
	}
	for range 3 {
		q.AddFrom("198.51.100.7", Event{Kind: RelayRefused, Actor: Anonymous("someone else")})
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	var scanner, other, dropped int
	for _, e := range a.all() {
		switch {
		case e.Kind == EventsDropped: // one count per append that had some
			n, _ := strconv.Atoi(e.Detail["count"])
			dropped += n
		case e.Actor == Anonymous("scanner"):
			scanner++
		case e.Actor == Anonymous("someone else"):
			other++
		}
	}
	if scanner != 3 || other != 3 || dropped != 997 {
		t.Errorf("kept %d of the flood and %d of the other source, counted %d left out; want 3, 3, 997", scanner, other, dropped)
	}
}

// TestQueueAuthenticatedAlways: with the rate spent by outsiders, a
// forbidden request by an authenticated party is still written.
func TestQueueAuthenticatedAlways(t *testing.T) {
	var a appended
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	q := NewQueue(QueueConfig{Append: a.Append, Rate: 1, Burst: 2, Now: clk.Now})
	for range 100 {
		q.Add(Event{Kind: RelayRefused, Actor: Anonymous("scanner")})
	}
	for i := range 50 {
		q.AddAuthenticated(Event{Kind: RelayRefused, Actor: Device("", "acme", "dev1"), Detail: map[string]string{"n": strconv.Itoa(i)}})
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range a.all() {
		if e.Actor == Device("", "acme", "dev1") {
			n++
		}
	}
	if n != 50 {
		t.Errorf("%d of the device's 50 forbidden requests written; want all", n)
	}
}
