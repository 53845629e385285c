package control

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrNonceQuota is returned by RememberFor when the owner already holds its
// share of the store's live nonces.
var ErrNonceQuota = errors.New("control: too many live nonces of one owner")

// MemoryNonceStore remembers nonces in memory, for nonces that need not
// outlive the process: the server's record of device request credentials
// (each is worth at most DeviceRequestSkew either side of its time, so a
// restart forgets nothing still worth replaying for long; see
// docs/security.md). It holds at most a fixed number of live nonces, and
// each owner (a device) at most its share, so one owner's flood of validly
// signed requests neither costs unbounded memory nor locks the others out.
// It is safe for concurrent use.
type MemoryNonceStore struct {
	max, perOwner int

	mu     sync.Mutex
	seen   map[string]nonceEntry // guarded by mu
	owners map[string]int        // guarded by mu: live nonces per owner
	next   int64                 // guarded by mu: when to sweep expired nonces next, unix seconds
}

type nonceEntry struct {
	owner string
	until int64 // forget after, unix seconds
}

// NewMemoryNonceStore returns an empty store that holds up to max live
// nonces, and up to perOwner of one owner (RememberFor; 0: max).
func NewMemoryNonceStore(max, perOwner int) *MemoryNonceStore {
	if perOwner <= 0 {
		perOwner = max
	}
	return &MemoryNonceStore{max: max, perOwner: perOwner, seen: map[string]nonceEntry{}, owners: map[string]int{}}
}

// RememberFor is Remember for a nonce of owner: a nonce is fresh once,
// whoever presents it, and owner may hold at most its share of live ones
// (beyond it, ErrNonceQuota).
func (s *MemoryNonceStore) RememberFor(owner, nonce string, forgetAfter, now time.Time) (bool, error) {
	if !validNonce(nonce) {
		return false, fmt.Errorf("control: nonce %q is not a 16 to 64 character token", nonce)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.seen[nonce]; ok && e.until >= now.Unix() {
		return false, nil
	}
	// Sweep at most once a second, full or not: a sweep walks the map,
	// and a flood must not make every call pay for one.
	if now.Unix() >= s.next {
		for n, e := range s.seen {
			if e.until < now.Unix() {
				s.forgetLocked(n, e)
			}
		}
		s.next = now.Unix() + 1
	}
	if s.owners[owner] >= s.perOwner {
		return false, fmt.Errorf("%w (%d)", ErrNonceQuota, s.perOwner)
	}
	if len(s.seen) >= s.max {
		return false, fmt.Errorf("control: nonce store holds %d live nonces, its limit", len(s.seen))
	}
	if old, ok := s.seen[nonce]; ok {
		s.forgetLocked(nonce, old) // expired, not swept yet
	}
	s.seen[nonce] = nonceEntry{owner: owner, until: forgetAfter.Unix()}
	s.owners[owner]++
	return true, nil
}

func (s *MemoryNonceStore) forgetLocked(nonce string, e nonceEntry) {
	delete(s.seen, nonce)
	if s.owners[e.owner]--; s.owners[e.owner] <= 0 {
		delete(s.owners, e.owner)
	}
}
