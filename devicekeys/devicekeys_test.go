package devicekeys_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/devicekeys"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/storetest"
)

// counted wraps a lookup and counts its calls.
type counted struct {
	lookup devicekeys.Lookup
	n      atomic.Int64
}

func (c *counted) Lookup(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
	c.n.Add(1)
	return c.lookup(ctx, fleet, device)
}

// fleetOf makes a real store with fleet "acme", enrolls names into it and
// returns the store, the cache on it (told of the store's changes, as
// the server does) and the counter of store reads.
type fleetOf struct {
	st    store.Store
	fleet *store.Fleet
	cache *devicekeys.Cache
	reads *counted
}

func newFleet(t *testing.T, cfg devicekeys.Config) *fleetOf {
	t.Helper()
	st := storetest.OpenSQLite(t)
	f := &store.Fleet{Name: "acme"}
	if err := st.CreateFleet(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	reads := &counted{lookup: devicekeys.StoreLookup(st)}
	cfg.Lookup = reads.Lookup
	c := devicekeys.New(cfg)
	st.Watch(t.Context(), c.Apply)
	return &fleetOf{st: st, fleet: f, cache: c, reads: reads}
}

// enroll enrolls name with a new key and returns the key.
func (f *fleetOf) enroll(t *testing.T, name string) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	secret := fmt.Sprintf("tok-%s-%d", name, time.Now().UnixNano())
	hash := fmt.Sprintf("%x", sha256.Sum256([]byte(secret)))
	if err := f.st.CreateEnrollmentToken(t.Context(), &store.EnrollmentToken{FleetID: f.fleet.ID, Hash: hash, UsesLeft: 1, MaxUses: 1}); err != nil {
		t.Fatal(err)
	}
	d := &store.Device{Name: name, PublicKey: string(ssh.MarshalAuthorizedKey(sshPub))}
	if err := f.st.EnrollDevice(t.Context(), hash, time.Now(), d, func(*store.Fleet) (string, error) { return "cert", nil }); err != nil {
		t.Fatal(err)
	}
	return pub
}

func (f *fleetOf) deleteDevice(t *testing.T, name string) {
	t.Helper()
	d, err := f.st.GetDeviceByName(t.Context(), f.fleet.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.DeleteDevice(t.Context(), d.ID); err != nil {
		t.Fatal(err)
	}
}

// TestStorm: a thousand logins of a hundred devices at once read the
// store once per device, and every one gets its device's key.
func TestStorm(t *testing.T) {
	t.Parallel()
	f := newFleet(t, devicekeys.Config{})
	keys := map[string]ed25519.PublicKey{}
	for i := range 100 {
		name := fmt.Sprintf("dev%d", i)
		keys[name] = f.enroll(t, name)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Go(func() {
			name := fmt.Sprintf("dev%d", i%100)
			key, err := f.cache.Key(t.Context(), "acme", name)
			if err == nil && !key.Equal(keys[name]) {
				err = fmt.Errorf("%s got another device's key", name)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.reads.n.Load(); n != 100 {
		t.Errorf("%d store reads for 100 devices' 1000 logins; want 100", n)
	}
}

// TestDeleteAndEnrollAgain: a deleted device is refused at its next
// login, not after the cache's time; the name enrolled again (a new
// device with a new key) is let in with the new key only.
func TestDeleteAndEnrollAgain(t *testing.T) {
	t.Parallel()
	f := newFleet(t, devicekeys.Config{TTL: time.Hour})
	old := f.enroll(t, "dev1")
	if key, err := f.cache.Key(t.Context(), "acme", "dev1"); err != nil || !key.Equal(old) {
		t.Fatalf("Key = %v, %v; want the enrolled key", key, err)
	}
	f.deleteDevice(t, "dev1")
	if _, err := f.cache.Key(t.Context(), "acme", "dev1"); !errors.Is(err, devicekeys.ErrUnknownDevice) {
		t.Fatalf("after the delete: Key error %v; want ErrUnknownDevice", err)
	}
	renewed := f.enroll(t, "dev1")
	key, err := f.cache.Key(t.Context(), "acme", "dev1")
	if err != nil || !key.Equal(renewed) {
		t.Fatalf("after enrolling again: Key = %v, %v; want the new key", key, err)
	}
}

// TestForgetDuringLookup: a store read that began before a change may
// have read what the change replaced; its answer goes to its callers but
// is not kept, so the next login reads again.
func TestForgetDuringLookup(t *testing.T) {
	t.Parallel()
	pub, _, _ := ed25519.GenerateKey(nil)
	started, release := make(chan struct{}), make(chan struct{})
	var reads atomic.Int64
	c := devicekeys.New(devicekeys.Config{Lookup: func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
		if reads.Add(1) == 1 {
			close(started)
			<-release
		}
		return pub, nil
	}})
	done := make(chan error, 1)
	go func() {
		_, err := c.Key(t.Context(), "acme", "dev1")
		done <- err
	}()
	<-started
	c.Apply(store.Change{Kind: store.DeviceDeleted, Fleet: "acme", Device: "dev1"})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Key(t.Context(), "acme", "dev1"); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("%d reads; want 2: the first read's answer, older than the delete, was kept", n)
	}
}

// TestNoJoinAfterForget: a login that starts after a forget (of a device,
// a fleet, or everything) never joins a store read that began before it.
func TestNoJoinAfterForget(t *testing.T) {
	t.Parallel()
	for _, forget := range []func(*devicekeys.Cache){
		func(c *devicekeys.Cache) { c.Forget("acme", "dev1") },
		func(c *devicekeys.Cache) { c.ForgetFleet("acme") },
		func(c *devicekeys.Cache) { c.ForgetAll() },
	} {
		old, _, _ := ed25519.GenerateKey(nil)
		renewed, _, _ := ed25519.GenerateKey(nil)
		started, release := make(chan struct{}), make(chan struct{})
		var reads atomic.Int64
		c := devicekeys.New(devicekeys.Config{Lookup: func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
			if reads.Add(1) == 1 {
				close(started)
				<-release
				return old, nil // read before the change
			}
			return renewed, nil
		}})
		go c.Key(t.Context(), "acme", "dev1")
		<-started
		forget(c)
		got := make(chan ed25519.PublicKey, 1)
		go func() { k, _ := c.Key(t.Context(), "acme", "dev1"); got <- k }()
		k := <-got // must not wait for the first read: it is a new one
		close(release)
		if !k.Equal(renewed) {
			t.Errorf("a login after the forget got the key read before it")
		}
	}
}

// TestUnknownAndFailures: a name that does not exist is asked of the
// store at each login (a device enrolled through another node is let in
// at once); a store that fails is asked again at the next login; keys
// expire after TTL; the cache's size stays under MaxEntries; ChangesLost
// drops everything.
func TestUnknownAndFailures(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		now   = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
		reads = map[string]int{}
		down  = true
	)
	pub, _, _ := ed25519.GenerateKey(nil)
	c := devicekeys.New(devicekeys.Config{
		TTL: time.Minute, MaxEntries: 50,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Lookup: func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
			mu.Lock()
			defer mu.Unlock()
			reads[device]++
			switch {
			case device == "flaky" && down:
				return nil, errors.New("the database is away")
			case strings.HasPrefix(device, "flaky"), device == "real":
				return pub, nil
			}
			return nil, devicekeys.ErrUnknownDevice
		}})
	ctx := t.Context()
	for range 5 {
		if _, err := c.Key(ctx, "acme", "ghost"); !errors.Is(err, devicekeys.ErrUnknownDevice) {
			t.Fatalf("ghost: %v", err)
		}
	}
	if _, err := c.Key(ctx, "acme", "flaky"); err == nil {
		t.Fatal("a failed store read gave a key")
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if _, err := c.Key(ctx, "acme", "flaky"); err != nil {
		t.Fatalf("the store is back: %v", err)
	}
	mu.Lock()
	if reads["ghost"] != 5 || reads["flaky"] != 2 {
		t.Errorf("reads = %v; want ghost 5 (each login), flaky 2 (its failure not kept)", reads)
	}
	now = now.Add(time.Minute)
	mu.Unlock()
	c.Key(ctx, "acme", "flaky")
	mu.Lock()
	if reads["flaky"] != 3 {
		t.Errorf("flaky read %d times; want 3: its key expired after a minute", reads["flaky"])
	}
	mu.Unlock()

	for i := range 200 {
		c.Key(ctx, "acme", fmt.Sprintf("flaky-%d", i))
	}
	if n := c.Len(); n > 50 {
		t.Errorf("%d entries; want at most MaxEntries 50", n)
	}
	c.Key(ctx, "acme", "real")
	c.Apply(store.Change{Kind: store.ChangesLost})
	if n := c.Len(); n != 0 {
		t.Errorf("%d entries after ChangesLost; want none", n)
	}
}

// TestWarm: a warmed cache answers every device's login without a store
// read, and still drops a device deleted after.
func TestWarm(t *testing.T) {
	t.Parallel()
	f := newFleet(t, devicekeys.Config{})
	keys := map[string]ed25519.PublicKey{}
	for i := range 20 {
		name := fmt.Sprintf("dev%d", i)
		keys[name] = f.enroll(t, name)
	}
	n, err := f.cache.Warm(t.Context(), f.st)
	if err != nil || n != 20 {
		t.Fatalf("Warm = %d, %v; want 20 keys", n, err)
	}
	for name, want := range keys {
		if key, err := f.cache.Key(t.Context(), "acme", name); err != nil || !key.Equal(want) {
			t.Errorf("%s: %v, %v", name, key, err)
		}
	}
	if n := f.reads.n.Load(); n != 0 {
		t.Errorf("%d store reads after warming; want none", n)
	}
	f.deleteDevice(t, "dev3")
	if _, err := f.cache.Key(t.Context(), "acme", "dev3"); !errors.Is(err, devicekeys.ErrUnknownDevice) {
		t.Errorf("a device deleted after warming: %v; want ErrUnknownDevice", err)
	}
}
