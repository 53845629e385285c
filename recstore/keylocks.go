package recstore

import (
	"context"
	"sync"
)

// KeyLocks is a lock per Key within one process, taken in the order asked
// and given up when a context ends. The zero value is ready to use. Dir's
// locks are these; recstore/s3store takes one before its lease across
// nodes, so that the uploads one node handles queue here rather than poll
// the object store.
type KeyLocks struct {
	mu    sync.Mutex
	locks map[Key]*keyLock // guarded by mu: kept while someone holds or waits
}

type keyLock struct {
	held  chan struct{} // a token in it while the lock is held
	users int           // guarded by KeyLocks.mu: holders and waiters
}

// Lock takes key's lock, or returns ctx's error if ctx ends first. The
// function it returns releases the lock.
func (l *KeyLocks) Lock(ctx context.Context, key Key) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[Key]*keyLock{}
	}
	k := l.locks[key]
	if k == nil {
		k = &keyLock{held: make(chan struct{}, 1)}
		l.locks[key] = k
	}
	k.users++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if k.users--; k.users == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
	select {
	case k.held <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-k.held
			done()
		})
	}, nil
}
