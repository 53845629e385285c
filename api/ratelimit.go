package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/connlimit"
)

// maxLimiterKeys bounds each limiter's memory: past it, keys whose failures
// all left the window are dropped, and if that is not enough, the key
// that failed least recently.
const maxLimiterKeys = 10000

// failureLimiter counts failed attempts per key (an account, an address) in
// a sliding window and refuses a key that has max of them.
//
// Each attempt is counted as a failure when it starts (take) and forgiven
// if it succeeds (forgive), so that many attempts sent at once cannot all
// slip in before the first failure is recorded.
type failureLimiter struct {
	max    int
	window time.Duration

	mu sync.Mutex
	// failures (guarded by mu) holds each key's failure times within the
	// window, oldest first, at most max of them.
	failures map[string][]time.Time
}

func newFailureLimiter(max int, window time.Duration) *failureLimiter {
	return &failureLimiter{max: max, window: window, failures: map[string][]time.Time{}}
}

// take records an attempt by key at now, unless key already has max
// failures in the window; then it records nothing and says how long until
// the oldest of them leaves the window.
func (l *failureLimiter) take(key string, now time.Time) (retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.liveLocked(key, now)
	if len(times) >= l.max {
		return times[len(times)-l.max].Add(l.window).Sub(now), false
	}
	if times == nil {
		l.makeRoomLocked(now)
	}
	times = append(times, now)
	if len(times) > l.max {
		times = times[len(times)-l.max:]
	}
	l.failures[key] = times
	return 0, true
}

// blocked says whether key has max failures in the window, and then how
// long until the oldest of them leaves it; it records nothing.
func (l *failureLimiter) blocked(key string, now time.Time) (retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.liveLocked(key, now)
	if len(times) < l.max {
		return 0, false
	}
	return times[len(times)-l.max].Add(l.window).Sub(now), true
}

// forgive removes the attempt take recorded at t: it succeeded.
func (l *failureLimiter) forgive(key string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.failures[key]
	for i := len(times) - 1; i >= 0; i-- {
		if times[i].Equal(t) {
			times = append(times[:i:i], times[i+1:]...)
			break
		}
	}
	if len(times) == 0 {
		delete(l.failures, key)
	} else {
		l.failures[key] = times
	}
}

// liveLocked returns key's failures still in the window, dropping the rest.
func (l *failureLimiter) liveLocked(key string, now time.Time) []time.Time {
	times := l.failures[key]
	i := 0
	for i < len(times) && !times[i].Add(l.window).After(now) {
		i++
	}
	if i == len(times) {
		delete(l.failures, key)
		return nil
	}
	return times[i:]
}

// makeRoomLocked keeps the map under maxLimiterKeys before a new key is
// added.
func (l *failureLimiter) makeRoomLocked(now time.Time) {
	if len(l.failures) < maxLimiterKeys {
		return
	}
	for key := range l.failures {
		l.liveLocked(key, now)
	}
	if len(l.failures) < maxLimiterKeys {
		return
	}
	var oldestKey string
	var oldest time.Time
	for key, times := range l.failures {
		if last := times[len(times)-1]; oldestKey == "" || last.Before(oldest) {
			oldestKey, oldest = key, last
		}
	}
	delete(l.failures, oldestKey)
}

// tooMany is the 429 answer: what was refused, for how long, and a
// Retry-After header with the same wait in seconds.
func tooMany(what string, wait time.Duration) *httpError {
	secs := int(math.Ceil(wait.Seconds()))
	mins := (secs + 59) / 60
	unit := "minutes"
	if mins == 1 {
		unit = "minute"
	}
	e := errorf(http.StatusTooManyRequests, apitype.CodeRateLimited, "%s; try again in %d %s", what, mins, unit)
	e.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	return e
}

// limit is one failure limiter and the key an attempt counts against.
type limit struct {
	l    *failureLimiter
	key  string
	what string // the refusal, as in "too many failed logins for this account"
}

// attempt counts an attempt against every limit, or refuses it with 429 if
// one of them is exhausted. Call forgive when the attempt succeeds (or
// failed through no fault of the caller): it did not count.
func attempt(now time.Time, limits ...limit) (forgive func(), err error) {
	forgive = func() {}
	for _, lim := range limits {
		wait, ok := lim.l.take(lim.key, now)
		if !ok {
			forgive()
			return nil, tooMany(lim.what, wait)
		}
		prev := forgive
		forgive = func() { prev(); lim.l.forgive(lim.key, now) }
	}
	return forgive, nil
}

// sourceKey is what a client's failures count against: its IPv4 address,
// or its IPv6 /64, as for the relay's handshakes (connlimit.SourceOf).
func sourceKey(addr string) string { return connlimit.SourceOf(addr) }

// clientAddr is the client's IP address. Porthole's API is served
// directly, not behind a proxy, so the connection's address is the
// client's.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
