package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/presence"
	"github.com/porthole/porthole/store"
)

// fakeWatcher is a presence tracker the test tells changes to.
type fakeWatcher struct {
	mu  sync.Mutex
	n   int
	fns map[int]func(presence.Change) // guarded by mu
}

var _ PresenceWatcher = (*fakeWatcher)(nil)
var _ PresenceWatcher = (*presence.Tracker)(nil)

func (f *fakeWatcher) Watch(fn func(presence.Change)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fns == nil {
		f.fns = map[int]func(presence.Change){}
	}
	id := f.n
	f.n++
	f.fns[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.fns, id)
	}
}

func (f *fakeWatcher) tell(c presence.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fn := range f.fns {
		fn(c)
	}
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return b
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ name, data string }

// sseStream reads a stream of events until the test ends.
type sseStream struct {
	events chan sseEvent // closed when the stream ends
}

// openPresence opens GET /api/v1/presence?query on ts with edit applied
// (credentials), and fails unless it streams.
func openPresence(t *testing.T, ts *testServer, query string, edit func(*http.Request)) *sseStream {
	t.Helper()
	req := newRequest(t, t.Context(), "GET", ts.ts.URL+"/api/v1/presence"+query, nil)
	edit(req)
	resp, err := ts.ts.Client().Do(req)
	must(t, err)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b := readAll(t, resp)
		resp.Body.Close()
		t.Fatalf("presence: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseStream{events: make(chan sseEvent, 100)}
	done := make(chan struct{})
	t.Cleanup(func() { resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s
}

// next is the next event, which must be called name, within 5 s.
func (s *sseStream) next(t *testing.T, name string) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("the stream ended; want a %s event", name)
		}
		if ev.name != name {
			t.Fatalf("event %s %s; want a %s event", ev.name, ev.data, name)
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s event within 5 s", name)
	}
	panic("unreachable")
}

// device decodes a device event.
func (ev sseEvent) device(t *testing.T) apitype.Device {
	t.Helper()
	var d apitype.Device
	if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
		t.Fatalf("%s event %q: %v", ev.name, ev.data, err)
	}
	return d
}

// ended waits for the stream's end.
func (s *sseStream) ended(t *testing.T) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the stream did not end within 5 s")
		}
	}
}

// TestPresenceStream: the stream lists the caller's fleets only, pushes
// the tracker's changes of those at once and nothing of other fleets,
// brings in the store's changes (labels, enrollments, deletions, and the
// presence another node recorded) at each resync without undoing a change
// the store has not caught up with, and follows the caller's roles.
func TestPresenceStream(t *testing.T) {
	t.Parallel()
	w := &fakeWatcher{}
	ts := newServer(t, Config{Presence: w, PresenceResync: 50 * time.Millisecond})
	mine, theirs := fx.newFleet(t), fx.newFleet(t)
	u := newUser(t, false)
	must(t, fx.store.SetRole(t.Context(), mine.ID, u.ID, store.RoleAuditor))
	dev, stranger := fx.newDevice(t, mine), fx.newDevice(t, theirs)
	secret := newConsoleSession(t, u)
	events := openPresence(t, ts, "", func(req *http.Request) { withConsoleSession(req, secret, false) })

	var snap []apitype.Device
	must(t, json.Unmarshal([]byte(events.next(t, apitype.PresenceSnapshot).data), &snap))
	if len(snap) != 1 || snap[0].ID != dev.ID || snap[0].Online {
		t.Fatalf("snapshot %+v; want %s alone, offline", snap, dev.Name)
	}

	// Another fleet's device changes: nothing of it is told.
	at := time.Now().UTC().Truncate(time.Millisecond)
	w.tell(presence.Change{Fleet: theirs.Name, Device: stranger.Name, Online: true, At: at})
	w.tell(presence.Change{Fleet: mine.Name, Device: dev.Name, Online: true, At: at})
	if d := events.next(t, apitype.PresenceDevice).device(t); d.ID != dev.ID || !d.Online || !d.LastSeen.Equal(at) {
		t.Fatalf("after it connected: %+v", d)
	}
	// It leaves; the store, which this fake tracker does not write, still
	// says online: resyncs must not bring that back.
	gone := at.Add(time.Second)
	must(t, fx.store.SetDevicePresence(t.Context(), store.DevicePresence{DeviceID: dev.ID, Online: true, At: at}))
	w.tell(presence.Change{Fleet: mine.Name, Device: dev.Name, Online: false, At: gone})
	if d := events.next(t, apitype.PresenceDevice).device(t); d.Online {
		t.Fatalf("after it left: %+v", d)
	}
	must(t, fx.store.SetDeviceLabels(t.Context(), dev.ID, map[string]string{"site": "lab"}))
	if d := events.next(t, apitype.PresenceDevice).device(t); d.Labels["site"] != "lab" || d.Online {
		t.Fatalf("after its labels changed: %+v (the store's stale online must not win)", d)
	}
	// Another node records it online later: the store is newer, and wins.
	back := gone.Add(time.Second)
	must(t, fx.store.SetDevicePresence(t.Context(), store.DevicePresence{DeviceID: dev.ID, Online: true, At: back}))
	if d := events.next(t, apitype.PresenceDevice).device(t); !d.Online || !d.LastSeen.Equal(back) {
		t.Fatalf("after another node saw it: %+v", d)
	}
	// A device enrolled in the fleet appears; a deleted one leaves.
	added := fx.newDevice(t, mine)
	if d := events.next(t, apitype.PresenceDevice).device(t); d.ID != added.ID {
		t.Fatalf("after %s enrolled: %+v", added.Name, d)
	}
	must(t, fx.store.DeleteDevice(t.Context(), added.ID))
	if ev := events.next(t, apitype.PresenceRemoved); !strings.Contains(ev.data, added.ID) {
		t.Fatalf("after %s was deleted: %s", added.Name, ev.data)
	}
	// The user loses the fleet: its devices leave the stream.
	must(t, fx.store.RemoveRole(t.Context(), mine.ID, u.ID))
	if ev := events.next(t, apitype.PresenceRemoved); !strings.Contains(ev.data, dev.ID) {
		t.Fatalf("after the role was taken away: %s", ev.data)
	}
	w.tell(presence.Change{Fleet: mine.Name, Device: dev.Name, Online: false, At: back.Add(time.Second)})
	select {
	case ev := <-events.events:
		if ev.name != "" {
			t.Fatalf("after the role was taken away the stream told %s %s", ev.name, ev.data)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

// TestPresenceStreamOneFleet: a stream of one fleet ends, telling why,
// when its caller's role there is taken away, or their login revoked.
func TestPresenceStreamOneFleet(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{PresenceResync: 50 * time.Millisecond})
	fl := fx.newFleet(t)
	u := newUser(t, false)
	must(t, fx.store.SetRole(t.Context(), fl.ID, u.ID, store.RoleAuditor))
	token, tok, err := newToken(fx.store, u, time.Now().Add(time.Hour))
	must(t, err)
	bearer := func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) }
	events := openPresence(t, ts, "?fleet="+fl.Name, bearer)
	events.next(t, apitype.PresenceSnapshot)
	must(t, fx.store.RemoveRole(t.Context(), fl.ID, u.ID))
	if ev := events.next(t, apitype.PresenceEnd); !strings.Contains(ev.data, endNoAccess) {
		t.Errorf("end %s", ev.data)
	}
	events.ended(t)

	// A login revoked behind the stream's back (another node, expiry) is
	// found at the next resync.
	must(t, fx.store.SetRole(t.Context(), fl.ID, u.ID, store.RoleAuditor))
	events = openPresence(t, ts, "?fleet="+fl.Name, bearer)
	events.next(t, apitype.PresenceSnapshot)
	must(t, fx.store.DeleteToken(t.Context(), u.ID, tok.ID))
	if ev := events.next(t, apitype.PresenceEnd); !strings.Contains(ev.data, endLoggedOut) {
		t.Errorf("end %s", ev.data)
	}
	events.ended(t)
}

// TestPresenceStreamRevokedAtOnce: revoking a login on this node ends its
// streams at once, without waiting for a resync.
func TestPresenceStreamRevokedAtOnce(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{PresenceResync: time.Hour})
	u := newUser(t, false)
	a, b := ts.login(t, u), ts.login(t, u)
	events := openPresence(t, ts, "", func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+a.Token) })
	events.next(t, apitype.PresenceSnapshot)
	if r := do(t, ts.ts, "DELETE", "/api/v1/tokens/"+a.TokenID, b.Token, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoking: %d %s", r.status, r.body)
	}
	events.next(t, apitype.PresenceEnd)
	events.ended(t)
}

// TestPresenceStreamShutdown: CloseStreams ends every stream, saying the
// server stops, and refuses new ones.
func TestPresenceStreamShutdown(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{PresenceResync: time.Hour})
	u := newUser(t, true)
	secret := newConsoleSession(t, u)
	as := func(req *http.Request) { withConsoleSession(req, secret, false) }
	events := openPresence(t, ts, "", as)
	events.next(t, apitype.PresenceSnapshot)
	ts.CloseStreams()
	if ev := events.next(t, apitype.PresenceEnd); !strings.Contains(ev.data, endShutdown) {
		t.Errorf("end %s", ev.data)
	}
	events.ended(t)
	browser(t, ts, "GET", "/api/v1/presence", nil, as).wantError(t, http.StatusServiceUnavailable, apitype.CodeUnavailable)
}

// TestPresenceStreamCapPerUser: a user who signs in again and again does
// not multiply the cap by their logins: across all of them they hold at
// most MaxStreamsPerUser streams, and one more ends their oldest (on
// whichever login it ran). Another user's streams are not touched.
func TestPresenceStreamCapPerUser(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{PresenceResync: time.Hour})
	fl := fx.newFleet(t)
	u, someone := newUser(t, false), newUser(t, false)
	must(t, fx.store.SetRole(t.Context(), fl.ID, u.ID, store.RoleAuditor))
	must(t, fx.store.SetRole(t.Context(), fl.ID, someone.ID, store.RoleAuditor))
	theirSecret := newConsoleSession(t, someone)
	theirs := openPresence(t, ts, "", func(req *http.Request) { withConsoleSession(req, theirSecret, false) })
	theirs.next(t, apitype.PresenceSnapshot)

	logins := MaxStreamsPerUser/MaxStreamsPerLogin + 1 // more logins than the user cap allows full ones
	var mine []*sseStream
	for range logins {
		secret := newConsoleSession(t, u)
		for range MaxStreamsPerLogin - 1 { // under each login's own cap
			es := openPresence(t, ts, "", func(req *http.Request) { withConsoleSession(req, secret, false) })
			es.next(t, apitype.PresenceSnapshot)
			mine = append(mine, es)
		}
	}
	over := len(mine) - MaxStreamsPerUser
	if over <= 0 {
		t.Fatalf("the test opened %d streams, not over the cap of %d", len(mine), MaxStreamsPerUser)
	}
	for i, es := range mine[:over] {
		if ev := es.next(t, apitype.PresenceEnd); !strings.Contains(ev.data, endReplaced) {
			t.Errorf("old stream %d ended with %s", i, ev.data)
		}
		es.ended(t)
	}
	testwait.For(t, 5*time.Second, "the user to hold the cap", func() bool {
		ts.streams.mu.Lock()
		defer ts.streams.mu.Unlock()
		return ts.streams.byUser[u.ID] == MaxStreamsPerUser && ts.streams.byUser[someone.ID] == 1
	})
	for i, es := range mine[over:] {
		select {
		case ev := <-es.events:
			t.Errorf("stream %d within the cap heard %+v", over+i, ev)
		default:
		}
	}
	select {
	case ev := <-theirs.events:
		t.Errorf("another user's stream heard %+v", ev)
	default:
	}
}

// TestPresenceStreamEscapesHTML: labels that hold HTML reach the console
// as JSON text, never as markup: the stream and the device list escape
// '<' and '>' (the console then renders them as text; e2e checks it).
func TestPresenceStreamEscapesHTML(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{PresenceResync: time.Hour})
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	const payload = `<img src=x onerror="alert(1)"><script>alert(2)</script>`
	must(t, fx.store.SetDeviceLabels(t.Context(), d.ID, map[string]string{"note": payload}))
	u := newUser(t, false)
	must(t, fx.store.SetRole(t.Context(), fl.ID, u.ID, store.RoleAuditor))
	secret := newConsoleSession(t, u)
	as := func(req *http.Request) { withConsoleSession(req, secret, false) }
	snap := openPresence(t, ts, "?fleet="+fl.Name, as).next(t, apitype.PresenceSnapshot)
	list := browser(t, ts, "GET", "/api/v1/devices?fleet="+fl.Name, nil, as)
	for what, body := range map[string]string{"presence snapshot": snap.data, "device list": string(list.body)} {
		if strings.ContainsAny(body, "<>") {
			t.Errorf("the %s holds raw markup: %s", what, body)
		}
		var got []apitype.Device
		must(t, json.Unmarshal([]byte(body), &got))
		if len(got) != 1 || got[0].Labels["note"] != payload {
			t.Errorf("the %s does not give the label back as it was: %+v", what, got)
		}
	}
}

// listSpy counts the store's device listings.
type listSpy struct {
	store.Store
	mu    sync.Mutex
	lists int // guarded by mu
}

func (s *listSpy) ListDevices(ctx context.Context, f store.DeviceFilter) ([]*store.Device, error) {
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	return s.Store.ListDevices(ctx, f)
}

func (s *listSpy) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// TestPresenceStreamStorm: a storm of changes costs a stream no query for
// other fleets' devices, and at most one a second for devices of its own
// it has not listed or when it falls behind.
func TestPresenceStreamStorm(t *testing.T) {
	t.Parallel()
	w, spy := &fakeWatcher{}, &listSpy{Store: fx.store}
	ts := newServer(t, Config{Store: spy, Presence: w, PresenceResync: time.Hour})
	mine, theirs := fx.newFleet(t), fx.newFleet(t)
	u := newUser(t, false)
	must(t, fx.store.SetRole(t.Context(), mine.ID, u.ID, store.RoleAuditor))
	secret := newConsoleSession(t, u)
	events := openPresence(t, ts, "", func(req *http.Request) { withConsoleSession(req, secret, false) })
	events.next(t, apitype.PresenceSnapshot)
	before := spy.count()
	start := time.Now()
	for i := range 2000 {
		w.tell(presence.Change{Fleet: theirs.Name, Device: fmt.Sprintf("dev%d", i), Online: true, At: time.Now()})
	}
	for i := range 2000 {
		w.tell(presence.Change{Fleet: mine.Name, Device: fmt.Sprintf("unknown%d", i), Online: true, At: time.Now()})
	}
	time.Sleep(1500 * time.Millisecond)
	seconds := int(time.Since(start)/time.Second) + 1
	if n := spy.count() - before; n < 1 || n > seconds+1 {
		t.Errorf("%d device listings in %d s for 4000 changes; want 1 to %d", n, seconds, seconds+1)
	}
}

// TestPresenceStreamCap: one login holds at most MaxStreamsPerLogin
// streams; one more ends its oldest (replaced), never the new one: the
// oldest may be a connection of a network that vanished, which would
// otherwise lock its person out of their console for minutes. Another
// login's streams are not touched.
func TestPresenceStreamCap(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{PresenceResync: time.Hour})
	fl := fx.newFleet(t)
	u := newUser(t, false)
	must(t, fx.store.SetRole(t.Context(), fl.ID, u.ID, store.RoleAuditor))
	secret, other := newConsoleSession(t, u), newConsoleSession(t, u)
	withMine := func(req *http.Request) { withConsoleSession(req, secret, false) }
	theirs := openPresence(t, ts, "", func(req *http.Request) { withConsoleSession(req, other, false) })
	theirs.next(t, apitype.PresenceSnapshot)
	mine := make([]*sseStream, 0, MaxStreamsPerLogin+1)
	for range MaxStreamsPerLogin + 1 {
		es := openPresence(t, ts, "", withMine)
		es.next(t, apitype.PresenceSnapshot)
		mine = append(mine, es)
	}
	if ev := mine[0].next(t, apitype.PresenceEnd); !strings.Contains(ev.data, endReplaced) {
		t.Errorf("the oldest stream ended with %s", ev.data)
	}
	mine[0].ended(t)
	testwait.For(t, 5*time.Second, "the login to hold the cap", func() bool {
		ts.streams.mu.Lock()
		defer ts.streams.mu.Unlock()
		n := 0
		for _, sts := range ts.streams.byToken {
			n += len(sts)
		}
		return n == MaxStreamsPerLogin+1 // the cap, and the other login's one
	})
	select {
	case ev := <-theirs.events:
		t.Errorf("another login's stream heard %+v", ev)
	default:
	}
}
