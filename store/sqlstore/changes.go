package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/porthole/porthole/store"
)

// notice is a change as NOTIFY carries it: with the node that made it,
// which delivered it to its own watchers already.
type notice struct {
	Node string `json:"n"`
	store.Change
}

type watcher struct {
	ctx context.Context
	fn  func(store.Change)
}

// feed hands the changes the store commits to its watchers: those of this
// node after each commit, those of other nodes from the dialect's Listen.
type feed struct {
	node     string       // this Store's random name in notices
	logger   *slog.Logger // set before the first Watch (SetLogger)
	mu       sync.Mutex
	watchers map[int]watcher            // guarded by mu
	next     int                        // guarded by mu
	pending  map[*sql.Tx][]store.Change // guarded by mu: announced in a transaction not yet committed
	// listening is set once the listener runs; stop ends it and done is
	// closed when it has.
	listening bool
	stop      context.CancelFunc
	done      chan struct{}
	// ready is closed when the listener first listens; late is set if
	// the first Watch stopped waiting for that (guarded by mu).
	ready chan struct{}
	late  bool
}

// listenWait is how long the first Watch waits for the listener to
// listen, so that the changes committed after it returns are heard.
const listenWait = 10 * time.Second

// announce records c as made by tx: with PostgreSQL it is sent to every
// node in tx (NOTIFY is delivered on commit, never on rollback); this
// node's watchers hear of it once tx commits (inTx calls committed).
func (s *Store) announce(ctx context.Context, tx *sql.Tx, c store.Change) error {
	if s.dialect.Notify != "" {
		payload, err := json.Marshal(notice{Node: s.feed.node, Change: c})
		if err != nil {
			return fmt.Errorf("announce %s: %w", c.Kind, err)
		}
		if _, err := tx.ExecContext(ctx, s.dialect.Notify, s.dialect.Channel, string(payload)); err != nil {
			return fmt.Errorf("announce %s: %w", c.Kind, err)
		}
	}
	s.feed.mu.Lock()
	if s.feed.pending == nil {
		s.feed.pending = map[*sql.Tx][]store.Change{}
	}
	s.feed.pending[tx] = append(s.feed.pending[tx], c)
	s.feed.mu.Unlock()
	return nil
}

// ended forgets what tx announced and, if it committed, tells this node's
// watchers.
func (s *Store) ended(tx *sql.Tx, committed bool) {
	s.feed.mu.Lock()
	cs := s.feed.pending[tx]
	delete(s.feed.pending, tx)
	s.feed.mu.Unlock()
	if committed {
		for _, c := range cs {
			s.deliver(c)
		}
	}
}

func (s *Store) deliver(c store.Change) {
	s.feed.mu.Lock()
	ws := make([]watcher, 0, len(s.feed.watchers))
	for _, w := range s.feed.watchers {
		ws = append(ws, w)
	}
	s.feed.mu.Unlock()
	for _, w := range ws {
		if w.ctx.Err() == nil { // AfterFunc may not have removed it yet
			w.fn(c)
		}
	}
}

// Watch calls fn with every change committed from now on until ctx is
// done; see store.Changes. The first watcher starts the listener for other
// nodes' changes (PostgreSQL), so that a store opened for a one-off job
// (portholed init) holds no extra connection, and waits until it listens
// (up to listenWait; if it gives up, the listener says ChangesLost when it
// comes): what other nodes commit after Watch returns is heard.
func (s *Store) Watch(ctx context.Context, fn func(store.Change)) {
	f := &s.feed
	f.mu.Lock()
	if f.watchers == nil {
		f.watchers = map[int]watcher{}
	}
	id := f.next
	f.next++
	f.watchers[id] = watcher{ctx, fn}
	starting := s.dialect.Listen != nil && !f.listening
	if starting {
		f.listening = true
		lctx, stop := context.WithCancel(context.Background())
		f.stop, f.done, f.ready = stop, make(chan struct{}), make(chan struct{})
		go s.listen(lctx)
	}
	f.mu.Unlock()
	if starting {
		t := time.NewTimer(listenWait)
		select {
		case <-f.ready:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		f.mu.Lock()
		select {
		case <-f.ready:
		default:
			f.late = true // the listener says ChangesLost when it comes
		}
		f.mu.Unlock()
	}
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		delete(f.watchers, id)
		f.mu.Unlock()
	})
}

// How the listener retries after losing its connection: after
// listenRetry, doubled after each failure up to listenRetryMax.
const (
	listenRetry    = 500 * time.Millisecond
	listenRetryMax = 15 * time.Second
)

// listen runs the dialect's listener until ctx is done, connecting again
// after each failure; every connection but the first announces
// ChangesLost once it listens, for what was committed meanwhile, and so
// does the first if the Watch that started it stopped waiting for it.
func (s *Store) listen(ctx context.Context) {
	defer close(s.feed.done)
	first, wait := true, listenRetry
	failing := false
	for {
		err := s.dialect.Listen(ctx, func() {
			if failing {
				s.log().Info("hearing other server nodes' changes again")
				failing = false
			}
			lost := !first
			if first {
				s.feed.mu.Lock()
				close(s.feed.ready)
				lost = s.feed.late
				s.feed.mu.Unlock()
			}
			if lost {
				s.deliver(store.Change{Kind: store.ChangesLost})
			}
			first, wait = false, listenRetry
		}, func(payload string) {
			var n notice
			// This node's own changes were delivered as they committed;
			// ChangesLost is this node's own word, never another's.
			if json.Unmarshal([]byte(payload), &n) == nil && n.Node != s.feed.node && fromWire(n.Kind) {
				s.deliver(n.Change)
			}
		})
		if ctx.Err() != nil {
			return
		}
		if !failing {
			// Once per outage: meanwhile a device deleted or a session
			// closed on another node is not acted on here until the
			// connection is back (ChangesLost) or the cache expires.
			s.log().Warn("not hearing other server nodes' changes (deleted devices, closed sessions); trying again",
				"err", err, "in", wait)
			failing = true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, listenRetryMax)
	}
}

// SetLogger sets where the store says what the listener for other nodes'
// changes cannot do. Call it before the first Watch. Default: nowhere.
func (s *Store) SetLogger(l *slog.Logger) { s.feed.logger = l }

func (s *Store) log() *slog.Logger {
	if s.feed.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.feed.logger
}

// stopListening ends the listener, if one runs, and waits for it.
func (s *Store) stopListening() {
	s.feed.mu.Lock()
	stop, done := s.feed.stop, s.feed.done
	s.feed.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// fromWire reports whether a change of kind may come from another node:
// the kinds stores announce, nothing else. Anyone who can connect to the
// database can NOTIFY, so what arrives is a hint that the handlers check
// against the store before they act (store.Changes).
func fromWire(kind store.ChangeKind) bool {
	switch kind {
	case store.DeviceEnrolled, store.DeviceDeleted, store.FleetDeleted, store.SessionChanged:
		return true
	}
	return false
}
