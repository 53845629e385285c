package api

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/presence"
	"github.com/porthole/porthole/store"
)

// GET /api/v1/presence streams the devices of the caller's fleets (or of
// one, with fleet=NAME) as Server-Sent Events, for the web console: a
// snapshot first, then each device that changes, appears or leaves the
// scope (the events apitype names). Changes this node's presence tracker
// hears of are pushed at once; every PresenceResync the stream reads the
// store again, which brings what other server nodes heard (with an
// external broker each state message reaches one node), enrollments,
// deletions and label changes, and checks the caller again: a revoked or
// expired login ends the stream, and a fleet whose role was taken away
// leaves it. Revoking a login on this node (logout, DELETE /tokens/{id})
// ends its streams at once.

// PresenceWatcher tells of devices' connection changes as this node
// learns them; *presence.Tracker is one.
type PresenceWatcher interface {
	Watch(fn func(presence.Change)) (stop func())
}

// DefaultPresenceResync is the zero Config.PresenceResync.
const DefaultPresenceResync = 15 * time.Second

// Reasons of apitype.PresenceEnd.
const (
	endLoggedOut = "logged_out"
	endShutdown  = "shutdown"
	endNoAccess  = "no_access"
	endReplaced  = "replaced"
)

const (
	// presenceBuffer is how many changes a stream holds for its writer; a
	// stream that falls further behind reads the store again instead.
	presenceBuffer = 256
	// presenceWriteWait bounds each write to a stream's client: one that
	// reads nothing for this long is dropped.
	presenceWriteWait = 10 * time.Second
	// MaxStreamsPerLogin caps the presence streams one login holds open
	// (a console in a few tabs): each costs the node a goroutine, a buffer
	// and a store read every resync, which a stolen or scripted login
	// must not multiply. One more ends the login's oldest (replaced):
	// refusing the newest would lock a person out of their own console
	// for as long as streams of a vanished network linger (a half-open
	// connection is noticed only once TCP gives up, minutes later).
	MaxStreamsPerLogin = 8
	// MaxStreamsPerUser caps them across all of a user's logins, the same
	// way: a person may sign in from a few browsers, but a user (or a
	// script with their password and TOTP seed) who signs in again and
	// again must not multiply the cap by their logins.
	MaxStreamsPerUser = 3 * MaxStreamsPerLogin
)

// presenceBody is what GET /api/v1/presence answers, for the document.
var presenceBody = rawBody{answers: []rawAnswer{{status: http.StatusOK,
	about: "Server-Sent Events: snapshot ([]Device), device (Device), removed (DeviceRef), end (PresenceEndEvent); each event's data is one line of JSON",
	types: []string{"text/event-stream"}}}}

// streamPresence is GET /api/v1/presence.
func (s *Server) streamPresence(c *call) error {
	fleetName := c.r.URL.Query().Get("fleet")
	scope, err := c.presenceScope(fleetName)
	if err != nil {
		return err
	}
	st, err := s.streams.add(c.token.ID, c.user.ID)
	if err != nil {
		return err
	}
	defer s.streams.remove(st)

	changes := make(chan presence.Change, presenceBuffer)
	behind := make(chan struct{}, 1)
	if s.presence != nil {
		stop := s.presence.Watch(func(ch presence.Change) {
			select {
			case changes <- ch:
			default:
				select {
				case behind <- struct{}{}:
				default:
				}
			}
		})
		defer stop()
	}
	// Watching before reading: a change that lands in between is applied
	// on top of the snapshot, and a change applied twice is the same.
	ds, err := s.store.ListDevices(c.ctx, store.DeviceFilter{FleetIDs: scope.ids})
	if err != nil {
		return fmt.Errorf("listing devices: %w", err)
	}
	v := newPresenceView(ds)
	v.fleets = scope.names

	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no") // tell nginx-like proxies not to hold events back
	c.w.WriteHeader(http.StatusOK)
	es := &eventStream{w: c.w, rc: http.NewResponseController(c.w)}
	log := s.logger.With("request_id", requestID(c.ctx), "token_id", c.token.ID)

	if err := es.send(apitype.PresenceSnapshot, v.list()); err != nil {
		return nil // the client went away: nothing to answer
	}
	tick := time.NewTicker(s.presenceResync)
	defer tick.Stop()
	// A resync the stream's own events ask for (it fell behind, or heard
	// of a device it has not listed) comes at most once a second: a storm
	// of changes must not become a storm of queries.
	var soon <-chan time.Time
	last := time.Now()
	resyncSoon := func() {
		if soon == nil {
			soon = time.After(time.Until(last.Add(minResync)))
		}
	}
	for {
		var (
			err    error
			resync bool
		)
		select {
		case <-c.ctx.Done():
			return nil
		case ev := <-st.end:
			_ = es.send(apitype.PresenceEnd, ev)
			return nil
		case ch := <-changes:
			d, known := v.apply(ch)
			switch {
			case d != nil:
				err = es.send(apitype.PresenceDevice, d)
			case !known && v.inScope(ch.Fleet):
				// A device of the stream's fleets it has not listed:
				// enrolled since, or a name the store no longer has.
				resyncSoon()
			}
		case <-behind:
			resyncSoon()
		case <-soon:
			soon, resync = nil, true
		case <-tick.C:
			resync = true
		}
		if resync && err == nil {
			var ended bool
			last = time.Now()
			if ended, err = s.resyncPresence(c, fleetName, v, es); ended {
				return nil
			}
			if err == nil && !es.sentSince(s.presenceResync) {
				err = es.comment("still here") // keeps proxies from closing an idle stream
			}
		}
		if err != nil {
			if c.ctx.Err() == nil {
				log.Debug("presence stream ended", "err", err)
			}
			return nil // the client reconnects, and is checked again
		}
	}
}

// minResync is the least time between two resyncs a stream asks for
// itself.
const minResync = time.Second

// presenceScope is the fleets a presence stream shows: their IDs, to list
// their devices, and their names, to pick the tracker's changes; nil for
// every fleet (administrators).
type presenceScope struct {
	ids   []string
	names map[string]bool
}

// presenceScope is the scope of a stream of fleet fleetName, or of every
// fleet of the caller's for "".
func (c *call) presenceScope(fleetName string) (presenceScope, error) {
	if fleetName != "" {
		f, _, err := c.fleet(fleetName)
		if err != nil {
			return presenceScope{}, err
		}
		return presenceScope{ids: []string{f.ID}, names: map[string]bool{f.Name: true}}, nil
	}
	if c.user.Admin {
		return presenceScope{}, nil
	}
	ms, err := c.s.store.Memberships(c.ctx, c.user.ID)
	if err != nil {
		return presenceScope{}, fmt.Errorf("listing the caller's roles: %w", err)
	}
	sc := presenceScope{ids: make([]string, 0, len(ms)), names: make(map[string]bool, len(ms))} // empty, not nil: no fleets, nothing
	for _, m := range ms {
		sc.ids = append(sc.ids, m.FleetID)
		sc.names[m.FleetName] = true
	}
	return sc, nil
}

// resyncPresence checks the caller again and sends what changed in the
// store since the view was last brought up to date. It reports whether it
// ended the stream, having said why; an error ends it without a word (the
// client reconnects, and is checked again).
func (s *Server) resyncPresence(c *call, fleetName string, v *presenceView, es *eventStream) (ended bool, err error) {
	end := func(reason string) (bool, error) {
		return true, es.send(apitype.PresenceEnd, apitype.PresenceEndEvent{Reason: reason})
	}
	tok, err := s.store.TokenByHash(c.ctx, c.token.Hash, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return end(endLoggedOut) // revoked or expired
	} else if err != nil {
		return false, fmt.Errorf("checking the stream's login: %w", err)
	}
	user, err := s.store.GetUser(c.ctx, tok.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return end(endLoggedOut)
	} else if err != nil {
		return false, fmt.Errorf("looking up the stream's user: %w", err)
	}
	if c.viaCookie && s.idleOut(tok, s.now()) {
		// The stream itself is no use of the session: an open tab left
		// alone ends when its session would.
		s.endIdle(c, user, tok)
		return end(endLoggedOut)
	}
	c.user = user
	scope, err := c.presenceScope(fleetName)
	var he *httpError
	if errors.As(err, &he) {
		return end(endNoAccess) // the one fleet asked for is no longer the caller's
	} else if err != nil {
		return false, err
	}
	v.fleets = scope.names
	ds, err := s.store.ListDevices(c.ctx, store.DeviceFilter{FleetIDs: scope.ids})
	if err != nil {
		return false, fmt.Errorf("listing devices: %w", err)
	}
	changed, removed := v.merge(ds)
	for _, d := range changed {
		if err := es.send(apitype.PresenceDevice, d); err != nil {
			return false, err
		}
	}
	for _, r := range removed {
		if err := es.send(apitype.PresenceRemoved, r); err != nil {
			return false, err
		}
	}
	return false, nil
}

// presenceView is what a stream has told its client.
type presenceView struct {
	fleets map[string]bool // the names of the fleets in scope; nil: every fleet
	byID   map[string]*apitype.Device
	byName map[string]string // "fleet/name" -> ID
	// heard is when the tracker last told of each device's presence;
	// until the store has caught up with that (its LastSeen, kept to the
	// millisecond, reaches it), the store's older presence does not undo
	// it.
	heard map[string]time.Time
}

func newPresenceView(ds []*store.Device) *presenceView {
	v := &presenceView{byID: map[string]*apitype.Device{}, byName: map[string]string{}, heard: map[string]time.Time{}}
	for _, d := range ds {
		ad := apiDevice(d)
		v.byID[d.ID] = &ad
		v.byName[d.FleetName+"/"+d.Name] = d.ID
	}
	return v
}

// inScope reports whether fleet is one the stream shows.
func (v *presenceView) inScope(fleet string) bool { return v.fleets == nil || v.fleets[fleet] }

// list is every device, by fleet and name.
func (v *presenceView) list() []apitype.Device {
	out := make([]apitype.Device, 0, len(v.byID))
	for _, d := range v.byID {
		out = append(out, *d)
	}
	sortDevices(out)
	return out
}

// apply records a change of a device the view knows (known), returning it
// if its presence changed.
func (v *presenceView) apply(ch presence.Change) (changed *apitype.Device, known bool) {
	id, ok := v.byName[ch.Fleet+"/"+ch.Device]
	if !ok {
		return nil, false
	}
	d := v.byID[id]
	if !ch.At.IsZero() {
		v.heard[id] = ch.At
	}
	before := *d
	d.Online = ch.Online
	if ch.At.After(d.LastSeen) {
		d.LastSeen = ch.At
	}
	if d.Online == before.Online && d.LastSeen.Equal(before.LastSeen) {
		return nil, true
	}
	return d, true
}

// merge brings the view to ds, the store's devices of the scope, and
// returns the devices that changed or appeared and those that left.
func (v *presenceView) merge(ds []*store.Device) (changed []apitype.Device, removed []apitype.DeviceRef) {
	seen := make(map[string]bool, len(ds))
	for _, sd := range ds {
		seen[sd.ID] = true
		nd := apiDevice(sd)
		old := v.byID[sd.ID]
		if at, ok := v.heard[sd.ID]; ok && old != nil {
			if sd.LastSeen.Before(at.Truncate(time.Millisecond)) {
				nd.Online, nd.LastSeen = old.Online, old.LastSeen // the store has not caught up yet
			} else {
				delete(v.heard, sd.ID)
			}
		}
		if old != nil && devicesEqual(*old, nd) {
			continue
		}
		if old != nil && old.Fleet+"/"+old.Name != nd.Fleet+"/"+nd.Name {
			delete(v.byName, old.Fleet+"/"+old.Name)
		}
		v.byID[sd.ID] = &nd
		v.byName[nd.Fleet+"/"+nd.Name] = sd.ID
		changed = append(changed, nd)
	}
	for id, d := range v.byID {
		if seen[id] {
			continue
		}
		delete(v.byID, id)
		delete(v.heard, id)
		if v.byName[d.Fleet+"/"+d.Name] == id {
			delete(v.byName, d.Fleet+"/"+d.Name)
		}
		removed = append(removed, apitype.DeviceRef{ID: id, Fleet: d.Fleet, Name: d.Name})
	}
	return changed, removed
}

func devicesEqual(a, b apitype.Device) bool {
	return a.ID == b.ID && a.Fleet == b.Fleet && a.Name == b.Name && a.PublicKey == b.PublicKey &&
		a.Online == b.Online && a.LastSeen.Equal(b.LastSeen) && a.EnrolledAt.Equal(b.EnrolledAt) &&
		maps.Equal(a.Labels, b.Labels) && agentsEqual(a.Agent, b.Agent)
}

// agentsEqual: the same report of a device's agent (or none).
func agentsEqual(a, b *apitype.DeviceAgent) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Version == b.Version && a.Consent == b.Consent && a.ReportedAt.Equal(b.ReportedAt) &&
		slices.Equal(a.Capabilities, b.Capabilities) && slices.Equal(a.AllowPorts, b.AllowPorts)
}

// eventStream writes Server-Sent Events.
type eventStream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	last time.Time // when something was last sent
}

// send writes one event whose data is v as one line of JSON.
func (es *eventStream) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding a %s event: %w", event, err)
	}
	return es.write("event: " + event + "\ndata: " + string(data) + "\n\n")
}

// comment writes a line clients ignore.
func (es *eventStream) comment(text string) error { return es.write(": " + text + "\n\n") }

func (es *eventStream) write(s string) error {
	// Not every writer has deadlines (httptest's recorder); those that do
	// drop a client that stops reading.
	_ = es.rc.SetWriteDeadline(time.Now().Add(presenceWriteWait))
	if _, err := es.w.Write([]byte(s)); err != nil {
		return err
	}
	es.last = time.Now()
	return es.rc.Flush()
}

func (es *eventStream) sentSince(d time.Duration) bool { return time.Since(es.last) < d }

// streamSet holds the open presence streams by the login they run on.
type streamSet struct {
	mu      sync.Mutex
	closed  bool                        // guarded by mu: the server is stopping
	seq     uint64                      // guarded by mu: the last stream's seq
	byToken map[string]map[*stream]bool // guarded by mu
	byUser  map[string]int              // guarded by mu: streams in byToken per user
}

// stream is one open presence stream of user userID on login tokenID; end
// takes the event that ends it; seq orders the streams by when they
// opened.
type stream struct {
	end     chan apitype.PresenceEndEvent
	tokenID string
	userID  string
	seq     uint64
}

// add registers a stream of login tokenID, unless the server is stopping.
// A login that holds MaxStreamsPerLogin already, or a user who holds
// MaxStreamsPerUser, loses its oldest (replaced), which its own goroutine
// then sees end.
func (ss *streamSet) add(tokenID, userID string) (*stream, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return nil, errorf(http.StatusServiceUnavailable, apitype.CodeUnavailable, "the server is stopping; connect again in a moment")
	}
	for len(ss.byToken[tokenID]) >= MaxStreamsPerLogin {
		ss.drop(ss.oldest(func(st *stream) bool { return st.tokenID == tokenID }))
	}
	for ss.byUser[userID] >= MaxStreamsPerUser {
		ss.drop(ss.oldest(func(st *stream) bool { return st.userID == userID }))
	}
	if ss.byToken == nil {
		ss.byToken, ss.byUser = map[string]map[*stream]bool{}, map[string]int{}
	}
	if ss.byToken[tokenID] == nil {
		ss.byToken[tokenID] = map[*stream]bool{}
	}
	ss.seq++
	st := &stream{end: make(chan apitype.PresenceEndEvent, 1), tokenID: tokenID, userID: userID, seq: ss.seq}
	ss.byToken[tokenID][st] = true
	ss.byUser[userID]++
	return st, nil
}

// oldest is the earliest opened stream that is one of which; ss.mu is
// held and there is one.
func (ss *streamSet) oldest(which func(*stream) bool) *stream {
	var oldest *stream
	for _, sts := range ss.byToken {
		for st := range sts {
			if which(st) && (oldest == nil || st.seq < oldest.seq) {
				oldest = st
			}
		}
	}
	return oldest
}

// drop ends st as replaced and forgets it; ss.mu is held.
func (ss *streamSet) drop(st *stream) {
	endStream(st, apitype.PresenceEndEvent{Reason: endReplaced})
	ss.forget(st)
}

func (ss *streamSet) remove(st *stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.forget(st)
}

// forget removes st from the set, if it is still there; ss.mu is held.
func (ss *streamSet) forget(st *stream) {
	if !ss.byToken[st.tokenID][st] {
		return // replaced before its goroutine ended
	}
	delete(ss.byToken[st.tokenID], st)
	if len(ss.byToken[st.tokenID]) == 0 {
		delete(ss.byToken, st.tokenID)
	}
	if ss.byUser[st.userID]--; ss.byUser[st.userID] == 0 {
		delete(ss.byUser, st.userID)
	}
}

// cut ends the streams of login tokenID with ev.
func (ss *streamSet) cut(tokenID string, ev apitype.PresenceEndEvent) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for st := range ss.byToken[tokenID] {
		endStream(st, ev)
	}
}

// cutUser ends the streams of every login of user userID with ev (the
// user was deleted or reset).
func (ss *streamSet) cutUser(userID string, ev apitype.PresenceEndEvent) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, sts := range ss.byToken {
		for st := range sts {
			if st.userID == userID {
				endStream(st, ev)
			}
		}
	}
}

// closeAll ends every stream with ev and refuses new ones.
func (ss *streamSet) closeAll(ev apitype.PresenceEndEvent) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	for _, sts := range ss.byToken {
		for st := range sts {
			endStream(st, ev)
		}
	}
}

func endStream(st *stream, ev apitype.PresenceEndEvent) {
	select {
	case st.end <- ev:
	default: // already ending
	}
}

// CloseStreams ends every presence stream, telling its client the server
// is stopping, and refuses new ones: an http.Server's Shutdown waits for
// open requests, and a stream never ends by itself. Register it with
// http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() {
	s.streams.closeAll(apitype.PresenceEndEvent{Reason: endShutdown})
}

// sortDevices orders devices as the store lists them: by fleet, then name.
func sortDevices(ds []apitype.Device) {
	slices.SortFunc(ds, func(a, b apitype.Device) int {
		return cmp.Or(cmp.Compare(a.Fleet, b.Fleet), cmp.Compare(a.Name, b.Name))
	})
}
