package control

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porthole/porthole/internal/atomicfile"
)

// NonceStore remembers the nonces of accepted commands.
type NonceStore interface {
	// Remember records nonce as used until forgetAfter and reports whether
	// it was new. Of concurrent calls with one nonce, exactly one reports
	// fresh. When it returns fresh, the nonce is durable. now lets the
	// store forget nonces whose forgetAfter has passed.
	Remember(nonce string, forgetAfter, now time.Time) (fresh bool, err error)
}

var _ NonceStore = (*FileNonceStore)(nil)

// ErrClosed is returned by a FileNonceStore used after Close.
var ErrClosed = errors.New("control: nonce store closed")

// Bounds of a FileNonceStore. Only the server makes nonces and each lives at
// most MaxValidity plus ClockSkew, so a full store means a server sending
// over a hundred commands a second to one device.
const (
	defaultMaxNonces = 1 << 16
	defaultCompactAt = 1024 // file lines before dropping expired ones pays off
	maxNonceLine     = 128  // a nonce, a space, unix seconds
)

// FileNonceStore is a NonceStore kept in an append-only file in the agent's
// state dir, so a restart does not reopen the replay window. Each line is
// "<nonce> <forget-after unix seconds>", appended and fsynced before
// Remember reports a nonce fresh. The file is rewritten without expired
// entries when opened and whenever expired lines outnumber live ones; it is
// always mode 0600. FileNonceStore is safe for concurrent use; one file must
// not be opened by two stores at once.
type FileNonceStore struct {
	path      string
	max       int // most unexpired nonces held; more is an error
	compactAt int // fewest file lines worth a rewrite

	mu    sync.Mutex
	seen  map[string]int64 // guarded by mu: nonce -> forget after, unix seconds
	f     *os.File         // guarded by mu: the file, positioned at its end; nil once closed
	lines int              // guarded by mu: lines in the file
	torn  bool             // guarded by mu: a failed append may have left half a line
}

// OpenFileNonceStore opens (or creates) the nonce file at path, forgets the
// nonces expired at now and rewrites the file with the rest. A line torn by
// a crash mid-append is dropped: its command was never accepted, since
// Remember returns only after the line is synced.
func OpenFileNonceStore(path string, now time.Time) (*FileNonceStore, error) {
	s := &FileNonceStore{path: path, max: defaultMaxNonces, compactAt: defaultCompactAt}
	if err := s.load(now); err != nil {
		return nil, err
	}
	if err := s.compactLocked(); err != nil {
		if s.f != nil {
			s.f.Close()
		}
		return nil, err
	}
	return s, nil
}

// load reads the nonces not yet expired at now from the file, if any.
func (s *FileNonceStore) load(now time.Time) error {
	s.seen = make(map[string]int64)
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: open nonce file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, maxNonceLine), maxNonceLine)
	for sc.Scan() {
		nonce, until, ok := parseNonceLine(sc.Text())
		if !ok || until < now.Unix() || until <= s.seen[nonce] {
			continue
		}
		s.seen[nonce] = until
		if len(s.seen) > s.max {
			return fmt.Errorf("control: nonce file %s holds over %d live nonces; it was not written by this agent: stop the agent, remove the file and restart", s.path, s.max)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("control: read nonce file %s (if it is damaged, stop the agent, remove it and restart): %w", s.path, err)
	}
	return nil
}

func parseNonceLine(line string) (nonce string, until int64, ok bool) {
	nonce, secs, ok := strings.Cut(line, " ")
	if !ok || !validNonce(nonce) {
		return "", 0, false
	}
	until, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || until <= 0 {
		return "", 0, false
	}
	return nonce, until, true
}

// Remember implements NonceStore.
func (s *FileNonceStore) Remember(nonce string, forgetAfter, now time.Time) (bool, error) {
	if !validNonce(nonce) {
		return false, fmt.Errorf("control: nonce %q is not a 16 to 64 character token", nonce)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return false, ErrClosed
	}
	if _, ok := s.seen[nonce]; ok {
		return false, nil
	}
	if err := s.makeRoomLocked(now); err != nil {
		return false, err
	}
	if _, err := fmt.Fprintf(s.f, "%s %d\n", nonce, forgetAfter.Unix()); err != nil {
		s.torn = true
		return false, fmt.Errorf("control: append to nonce file: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		s.torn = true
		return false, fmt.Errorf("control: sync nonce file: %w", err)
	}
	s.seen[nonce] = forgetAfter.Unix()
	s.lines++
	return true, nil
}

// makeRoomLocked forgets expired nonces when the store is full, rewrites
// the file when it is mostly expired lines or a failed append may have torn
// it, and fails if the store is still full.
func (s *FileNonceStore) makeRoomLocked(now time.Time) error {
	if len(s.seen) < s.max && !s.needsCompactLocked() {
		return nil
	}
	for n, until := range s.seen {
		if until < now.Unix() {
			delete(s.seen, n)
		}
	}
	if len(s.seen) >= s.max {
		return fmt.Errorf("control: nonce store holds %d live nonces, its limit", len(s.seen))
	}
	if s.needsCompactLocked() {
		return s.compactLocked()
	}
	return nil
}

// needsCompactLocked: the file may be torn, or is long and mostly expired.
func (s *FileNonceStore) needsCompactLocked() bool {
	return s.torn || s.lines >= s.compactAt && s.lines > 2*len(s.seen)
}

// compactLocked writes the live nonces to a new file, puts it in place of
// the old one (atomicfile.WriteFile), and appends to it from then on. Until
// the rename the old file stays as it was, so a failure loses nothing; after
// any failure the store counts as torn, so the next Remember compacts again
// before it appends (to a file that may no longer be the one in place).
func (s *FileNonceStore) compactLocked() error {
	var b bytes.Buffer
	for n, until := range s.seen {
		fmt.Fprintf(&b, "%s %d\n", n, until)
	}
	if err := atomicfile.WriteFile(s.path, b.Bytes(), 0o600); err != nil {
		s.torn = true
		return fmt.Errorf("control: compact nonce file: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		s.torn = true
		return fmt.Errorf("control: compact nonce file: %w", err)
	}
	if s.f != nil {
		s.f.Close()
	}
	s.f, s.lines, s.torn = f, len(s.seen), false
	return nil
}

// Close closes the file. Later calls to Remember, and to Close, return
// ErrClosed.
func (s *FileNonceStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return ErrClosed
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("control: close nonce file: %w", err)
	}
	return nil
}
