package control

import (
	"fmt"
	"sync"
	"time"
)

var _ NonceStore = (*MemoryNonceStore)(nil)

// MemoryNonceStore is a NonceStore held in memory, for nonces that need not
// outlive the process: the server's record of device request credentials
// (each is worth at most DeviceRequestSkew either side of its time, so a
// restart forgets nothing still worth replaying for long; see
// docs/security.md). It holds at most a fixed number of live nonces and
// then refuses, so a flood of validly signed requests costs bounded memory.
// It is safe for concurrent use.
type MemoryNonceStore struct {
	max int

	mu   sync.Mutex
	seen map[string]int64 // guarded by mu: nonce -> forget after, unix seconds
	next int64            // guarded by mu: when to sweep expired nonces next, unix seconds
}

// NewMemoryNonceStore returns an empty store that holds up to max live
// nonces.
func NewMemoryNonceStore(max int) *MemoryNonceStore {
	return &MemoryNonceStore{max: max, seen: map[string]int64{}}
}

// Remember implements NonceStore.
func (s *MemoryNonceStore) Remember(nonce string, forgetAfter, now time.Time) (bool, error) {
	if !validNonce(nonce) {
		return false, fmt.Errorf("control: nonce %q is not a 16 to 64 character token", nonce)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, ok := s.seen[nonce]; ok && until >= now.Unix() {
		return false, nil
	}
	// Sweep once a second at most, or when full: a sweep walks the map.
	if now.Unix() >= s.next || len(s.seen) >= s.max {
		for n, until := range s.seen {
			if until < now.Unix() {
				delete(s.seen, n)
			}
		}
		s.next = now.Unix() + 1
	}
	if len(s.seen) >= s.max {
		return false, fmt.Errorf("control: nonce store holds %d live nonces, its limit", len(s.seen))
	}
	s.seen[nonce] = forgetAfter.Unix()
	return true, nil
}
