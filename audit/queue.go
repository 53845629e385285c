package audit

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// ErrClosed is returned by a Queue that was closed.
var ErrClosed = errors.New("audit: queue closed")

// Defaults of QueueConfig.
const (
	DefaultRate        = 20  // events a second
	DefaultBurst       = 200 // events at once
	DefaultSourceRate  = 1   // events a second from one source
	DefaultSourceBurst = 20  // events at once from one source
	// authenticatedBacklog is how many events of authenticated parties may
	// wait to be appended; they are never left out for the rate.
	authenticatedBacklog = 4096
	// maxSources bounds the sources whose budgets are remembered; past it
	// the fullest buckets (sources quiet long enough) are forgotten.
	maxSources = 10000
)

// QueueConfig configures a Queue. Append is required.
type QueueConfig struct {
	// Append records events, in one transaction (store.Store's
	// AppendAudit).
	Append func(ctx context.Context, evs ...Event) error
	// Rate is how many events a second are kept once Burst is spent.
	// Zero: 20.
	Rate float64
	// Burst is how many events are kept at once, and how many may wait
	// to be appended. Zero: 200.
	Burst int
	// SourceRate and SourceBurst are one source's share of the rate, for
	// AddFrom, so that one source's flood does not crowd out another's
	// events. Zero: 1 a second, 20 at once.
	SourceRate  float64
	SourceBurst int
	// Logger hears of appends that failed. Nil: discarded.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Queue appends events in the background at a bounded rate. It is for
// events that go with no change, that an outsider can cause at will, and
// that must not slow the path reporting them: the relay's refusals, the
// commands devices say they rejected. Without it, a scanner knocking at the
// relay would write to the database at its own pace. What it leaves out it
// counts, and records the count as one EventsDropped event, so the log
// still says that something was left out and how much.
//
// Events it has accepted are appended in order, within a second or so
// (those of authenticated parties, which AddAuthenticated never leaves out,
// may come between an outsider's); Close appends those still waiting.
type Queue struct {
	cfg  QueueConfig
	log  *slog.Logger
	ch   chan Event
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	closed  bool               // guarded by mu
	tokens  float64            // guarded by mu: events that may be kept now
	last    time.Time          // guarded by mu: when tokens was last topped up
	sources map[string]*bucket // guarded by mu: each source's share, for AddFrom
	dropped int64              // guarded by mu: left out since the last count was recorded
	// authed carries the events of authenticated parties (AddAuthenticated),
	// which the rate never leaves out; adding counts the sends under way.
	authed chan Event
	adding sync.WaitGroup
	// swept is when sources whose share filled up again were last forgotten.
	swept time.Time // guarded by mu
}

// bucket is one source's share of the rate.
type bucket struct {
	tokens float64
	last   time.Time
}

// NewQueue starts a queue. Close it to stop its goroutine.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.SourceRate <= 0 {
		cfg.SourceRate = DefaultSourceRate
	}
	if cfg.SourceBurst <= 0 {
		cfg.SourceBurst = DefaultSourceBurst
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &Queue{cfg: cfg, log: log, ch: make(chan Event, cfg.Burst), stop: make(chan struct{}), done: make(chan struct{}),
		tokens: float64(cfg.Burst), last: cfg.Now(), sources: map[string]*bucket{}, authed: make(chan Event, authenticatedBacklog)}
	go q.run()
	return q
}

// Add queues ev, setting its Time when zero. It never blocks: past the
// rate, or with the queue full, ev is counted and left out.
func (q *Queue) Add(ev Event) { q.AddFrom("", ev) }

// AddFrom is Add for an event an outsider at source caused (an address,
// or its /64 for IPv6): past that source's share of the rate, its events
// are counted and left out, so that one source's flood leaves the rate to
// the others. An empty source has no share of its own.
func (q *Queue) AddFrom(source string, ev Event) {
	now := q.cfg.Now()
	if ev.Time.IsZero() {
		ev.Time = now
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.log.Warn("an audit event came after the queue closed; left out", "kind", ev.Kind)
		return
	}
	if source != "" && !q.takeSourceLocked(source, now) {
		q.dropped++
		q.mu.Unlock()
		return
	}
	q.tokens = min(float64(q.cfg.Burst), q.tokens+now.Sub(q.last).Seconds()*q.cfg.Rate)
	q.last = now
	if q.tokens < 1 {
		q.dropped++
		q.mu.Unlock()
		return
	}
	q.tokens--
	select {
	case q.ch <- ev:
	default:
		q.dropped++ // the database is slower than the rate
	}
	q.mu.Unlock()
}

// takeSourceLocked spends one of source's tokens, if it has one.
func (q *Queue) takeSourceLocked(source string, now time.Time) bool {
	b := q.sources[source]
	if b == nil {
		if len(q.sources) >= maxSources && now.Sub(q.swept) >= time.Second {
			// Forget the sources whose share has filled up again: they
			// have been quiet long enough to start afresh anyway. At most
			// once a second: a flood from many sources must not make
			// every event a walk over all of them.
			q.swept = now
			for k, o := range q.sources {
				if o.tokens+now.Sub(o.last).Seconds()*q.cfg.SourceRate >= float64(q.cfg.SourceBurst) {
					delete(q.sources, k)
				}
			}
		}
		if len(q.sources) >= maxSources {
			return false // a flood from more sources than can be told apart
		}
		b = &bucket{tokens: float64(q.cfg.SourceBurst), last: now}
		q.sources[source] = b
	}
	b.tokens = min(float64(q.cfg.SourceBurst), b.tokens+now.Sub(b.last).Seconds()*q.cfg.SourceRate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// AddAuthenticated queues an event of a party the server authenticated (a
// device or an engineer the relay let in that then asked for something
// forbidden): it is never left out for the rate, since its author is known
// and answerable; it waits if authenticatedBacklog events already do.
func (q *Queue) AddAuthenticated(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = q.cfg.Now()
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.log.Warn("an audit event came after the queue closed; left out", "kind", ev.Kind)
		return
	}
	// Close waits for this send before it stops the queue, so an event
	// taken is always appended.
	q.adding.Add(1)
	q.mu.Unlock()
	defer q.adding.Done()
	q.authed <- ev
}

// Close stops taking events, appends those waiting (and the count of those
// left out) and waits for that. A second call returns ErrClosed.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.closed = true
	q.mu.Unlock()
	q.adding.Wait() // the run loop still takes what they send
	close(q.stop)
	<-q.done
	return nil
}

// flushEvery is how often a count of left-out events is recorded while no
// other event comes; maxBatch bounds one append.
const (
	flushEvery = time.Second
	maxBatch   = 100
)

func (q *Queue) run() {
	defer close(q.done)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		var batch []Event
		select {
		case ev := <-q.ch:
			batch = q.drain(append(batch, ev))
		case ev := <-q.authed:
			batch = q.drain(append(batch, ev))
		case <-tick.C:
		case <-q.stop:
			// Add no longer sends (closed is set): take what is left.
			for {
				batch = q.drain(nil)
				if len(batch) == 0 {
					q.flush(nil)
					return
				}
				q.flush(batch)
			}
		}
		q.flush(batch)
	}
}

// drain adds to batch what waits in the channels, up to maxBatch.
func (q *Queue) drain(batch []Event) []Event {
	for len(batch) < maxBatch {
		select {
		case ev := <-q.ch:
			batch = append(batch, ev)
		case ev := <-q.authed:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// flush appends batch and, first, the count of events left out.
func (q *Queue) flush(batch []Event) {
	q.mu.Lock()
	dropped := q.dropped
	q.dropped = 0
	q.mu.Unlock()
	if dropped > 0 {
		batch = append([]Event{{Time: q.cfg.Now(), Kind: EventsDropped, Actor: System,
			Detail: map[string]string{"count": strconv.FormatInt(dropped, 10), "why": "more events than the audit queue's rate"}}}, batch...)
	}
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.cfg.Append(ctx, batch...); err != nil {
		q.log.Error("could not record audit events; they are lost", "events", len(batch), "first_kind", batch[0].Kind, "err", err)
	}
}
