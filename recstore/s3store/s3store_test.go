package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/porthole/porthole/internal/tests3"
	"github.com/porthole/porthole/recstore"
	"github.com/porthole/porthole/recstore/recstoretest"
	"github.com/porthole/porthole/recstore/s3store"
)

// open opens a Store ("a node") on bucket of srv under prefix rec/.
func open(t *testing.T, srv *tests3.Server, bucket string, edit func(*s3store.Config)) *s3store.Store {
	t.Helper()
	cfg := s3store.Config{URL: "s3://" + bucket + "/rec", Endpoint: srv.Endpoint, Region: tests3.Region,
		AccessKeyID: tests3.AccessKey, SecretAccessKey: tests3.SecretKey}
	if edit != nil {
		edit(&cfg)
	}
	s, err := s3store.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// objects lists the keys in bucket under prefix.
func objects(t *testing.T, srv *tests3.Server, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for o := range srv.Client(t).ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

func read(t *testing.T, s recstore.Store, k recstore.Key, name string) string {
	t.Helper()
	f, err := s.Open(t.Context(), k, name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConformance: the object store does what every Store does, and
// stores what its package comment says where it says.
func TestConformance(t *testing.T) {
	t.Parallel()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	s := open(t, srv, bucket, nil)
	recstoretest.Run(t, s)

	k := recstore.Key{Fleet: "flt_a", Session: "ses_b"}
	for off, chunk := range map[int64]string{0: "one\n", 4: "two\n"} {
		if err := s.Append(t.Context(), k, "events.jsonl", off, []byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := s.Lock(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	got := strings.Join(objects(t, srv, bucket, "rec/"), " ")
	if want := "rec/.locks/flt_a/ses_b rec/flt_a/ses_b/events.jsonl/00000000000000000000 rec/flt_a/ses_b/events.jsonl/00000000000000000004"; !strings.Contains(got, want) {
		t.Errorf("the bucket holds %s; want %s among them", got, want)
	}
	// The API deletes under the lock: the lease goes too.
	unlock, err = s.Lock(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	unlock()
	for _, key := range objects(t, srv, bucket, "rec/") {
		if strings.Contains(key, "ses_b") {
			t.Errorf("%s is left after Delete", key)
		}
	}
}

// TestSameOffsetTwoNodes: two nodes append at one offset at once, as two
// uploads that both think they hold the lock would. Exactly one wins, the
// other is told (ErrOffsetTaken), and the file holds the winner's bytes,
// whole. The same bytes sent by both (a retry through another node) are
// taken by both.
func TestSameOffsetTwoNodes(t *testing.T) {
	t.Parallel()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	a, b := open(t, srv, bucket, nil), open(t, srv, bucket, nil)
	k := recstore.Key{Fleet: "flt_1", Session: "ses_1"}
	ctx := t.Context()
	var want string
	for round := range 10 {
		off := int64(len(want))
		chunks := []string{strings.Repeat(fmt.Sprintf("a%d", round), 5000), fmt.Sprintf("node b, round %d\n", round)}
		var errs [2]error
		var wg sync.WaitGroup
		for i, s := range []*s3store.Store{a, b} {
			wg.Go(func() { errs[i] = s.Append(ctx, k, "events.jsonl", off, []byte(chunks[i])) })
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("round %d: both nodes wrote offset %d", round, off)
			case err == nil:
				won = i
			case !errors.Is(err, recstore.ErrOffsetTaken):
				t.Fatalf("round %d: the loser was told %v; want ErrOffsetTaken", round, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: neither node wrote: %v", round, errs)
		}
		want += chunks[won]
		for _, s := range []*s3store.Store{a, b} {
			if got := read(t, s, k, "events.jsonl"); got != want {
				t.Fatalf("round %d: the file reads %d bytes; want the %d of the winners", round, len(got), len(want))
			}
		}
	}

	// The same upload through both nodes at once, with no lock: the file
	// is the upload.
	data := []byte(strings.Repeat("0123456789abcdef\n", 3000))
	var wg sync.WaitGroup
	for _, s := range []*s3store.Store{a, b} {
		wg.Go(func() {
			for {
				size, err := s.Size(ctx, k, "0001-pty.cast")
				if err != nil {
					t.Error(err)
					return
				}
				if size == int64(len(data)) {
					return
				}
				end := min(size+4096, int64(len(data)))
				if err := s.Append(ctx, k, "0001-pty.cast", size, data[size:end]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := read(t, a, k, "0001-pty.cast"); got != string(data) {
		t.Fatalf("two nodes sending one upload stored %d bytes; want the %d sent", len(got), len(data))
	}
}

// cutTransport fails the PUT of a part once its body has sent cutAfter
// bytes, as a connection lost in the middle of an upload does; or fails
// every request while dead is set, as a node cut off the network.
type cutTransport struct {
	cutAfter atomic.Int64 // 0: no cut
	dead     atomic.Bool
}

func (c *cutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.dead.Load() {
		return nil, errors.New("this node is cut off")
	}
	if n := c.cutAfter.Load(); n > 0 && req.Method == http.MethodPut && req.Body != nil && !strings.Contains(req.URL.Path, ".locks") {
		req = req.Clone(req.Context())
		req.Body = &cutBody{r: req.Body, left: n}
	}
	return http.DefaultTransport.RoundTrip(req)
}

type cutBody struct {
	r    io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("the connection was lost")
	}
	n, err := b.r.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.r.Close() }

// TestResumeAfterFailedAppend: an append cut off in the middle of its
// body, or made while the object store is down, fails and leaves the file
// as it was (no torn part in the bucket); the upload then resumes from the
// size the store holds.
func TestResumeAfterFailedAppend(t *testing.T) {
	t.Parallel()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	cut := &cutTransport{}
	s := open(t, srv, bucket, func(c *s3store.Config) { c.Transport = cut })
	k := recstore.Key{Fleet: "flt_1", Session: "ses_1"}
	ctx := t.Context()
	if err := s.Append(ctx, k, "0001-exec.cast", 0, []byte("kept\n")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 256<<10)
	cut.cutAfter.Store(100 << 10)
	if err := s.Append(ctx, k, "0001-exec.cast", 5, big); err == nil {
		t.Fatal("an append cut off in the middle succeeded")
	}
	cut.cutAfter.Store(0)
	if n, err := s.Size(ctx, k, "0001-exec.cast"); n != 5 || err != nil {
		t.Fatalf("Size after the cut append = %d, %v; want 5", n, err)
	}
	if keys := objects(t, srv, bucket, "rec/flt_1/"); len(keys) != 1 {
		t.Fatalf("the bucket holds %v after the cut append; want the first part only", keys)
	}

	srv.Stop()
	err := s.Append(ctx, k, "0001-exec.cast", 5, big)
	if err == nil || !strings.Contains(err.Error(), srv.Endpoint) {
		t.Fatalf("an append while the store is down: %v; want an error naming %s", err, srv.Endpoint)
	}
	srv.Restart(t)

	if err := s.Append(ctx, k, "0001-exec.cast", 5, big); err != nil {
		t.Fatalf("resuming: %v", err)
	}
	if got := read(t, s, k, "0001-exec.cast"); got != "kept\n"+string(big) {
		t.Fatalf("after resuming the file holds %d bytes; want %d", len(got), 5+len(big))
	}
}

// TestLockAcrossNodes: uploads of one session through two nodes take
// turns.
func TestLockAcrossNodes(t *testing.T) {
	t.Parallel()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	nodes := []*s3store.Store{open(t, srv, bucket, nil), open(t, srv, bucket, nil)}
	k := recstore.Key{Fleet: "flt_1", Session: "ses_1"}
	var in atomic.Int32
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			for range 3 {
				unlock, err := nodes[i%2].Lock(t.Context(), k)
				if err != nil {
					t.Error(err)
					return
				}
				if in.Add(1) > 1 {
					t.Error("two holders of one session's lock on two nodes")
				}
				time.Sleep(2 * time.Millisecond)
				in.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
}

// TestLockOfDeadNode: a node holding a session's lock renews it, so
// another waits past its TTL; once the holder is cut off, its lock
// expires and the other node takes it. The first node, back, cannot
// release what it lost.
func TestLockOfDeadNode(t *testing.T) {
	t.Parallel()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	// Renewed every third of it, the lease holds through a renewal
	// that a loaded machine delays by half a second.
	const ttl = time.Second
	cut := &cutTransport{}
	a := open(t, srv, bucket, func(c *s3store.Config) { c.LockTTL, c.Holder, c.Transport = ttl, "node-a", cut })
	b := open(t, srv, bucket, func(c *s3store.Config) { c.LockTTL, c.Holder = ttl, "node-b" })
	k := recstore.Key{Fleet: "flt_1", Session: "ses_1"}
	unlockA, err := a.Lock(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*ttl)
	defer cancel()
	if unlock, err := b.Lock(ctx, k); err == nil {
		unlock()
		t.Fatal("node b took the lock node a holds and renews")
	} else if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "held by node-a") {
		t.Fatalf("node b gave up with %v; want a deadline, naming node-a", err)
	}

	cut.dead.Store(true) // node a dies, holding the lock
	start := time.Now()
	ctx, cancel = context.WithTimeout(t.Context(), 10*ttl)
	defer cancel()
	unlockB, err := b.Lock(ctx, k)
	if err != nil {
		t.Fatalf("the lock of a dead node did not expire: %v", err)
	}
	waited := time.Since(start)
	t.Logf("node b took the lock %v after node a was cut off", waited)
	if waited < ttl/2 {
		t.Errorf("node b took the lock %v after node a died; want about its TTL, %v", waited, ttl)
	}

	cut.dead.Store(false) // node a comes back and finishes
	unlockA()
	ctx, cancel = context.WithTimeout(t.Context(), ttl/2)
	defer cancel()
	if unlock, err := a.Lock(ctx, k); err == nil {
		unlock()
		t.Fatal("node a, back, released or took again the lock node b holds")
	}
	unlockB()
	unlock, err := a.Lock(t.Context(), k)
	if err != nil {
		t.Fatalf("node a after node b released: %v", err)
	}
	unlock()
}

// ignoreIfNoneMatch answers the second conditional PUT of Open's probe
// with success, as a server that ignores If-None-Match would.
type ignoreIfNoneMatch struct{ puts atomic.Int32 }

func (i *ignoreIfNoneMatch) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.Header.Get("If-None-Match") == "*" && i.puts.Add(1) == 2 {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Etag": {`"x"`}}, Body: http.NoBody, Request: req}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestOpenRefuses: Open says in words what is wrong with the bucket, the
// credentials or the server, before the server takes an upload.
func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	for _, tt := range []struct {
		name  string
		edit  func(*s3store.Config)
		is    error
		words []string
	}{
		{"no such bucket", func(c *s3store.Config) { c.URL = "s3://porthole-rec/x" }, s3store.ErrNoBucket,
			[]string{"bucket porthole-rec does not exist at " + srv.Endpoint, "create it"}},
		{"a wrong secret", func(c *s3store.Config) { c.SecretAccessKey = "wrong" }, s3store.ErrAccessDenied,
			[]string{"refused access key \"" + tests3.AccessKey + "\"", "check the key"}},
		{"conditional writes ignored", func(c *s3store.Config) { c.Transport = &ignoreIfNoneMatch{} }, s3store.ErrNoConditionalWrites,
			[]string{"If-None-Match", srv.Endpoint}},
		{"no secret", func(c *s3store.Config) { c.SecretAccessKey = "" }, nil, []string{"secret"}},
		{"an endpoint with a path", func(c *s3store.Config) { c.Endpoint += "/x" }, nil, []string{"scheme, host and port only"}},
		{"not s3://", func(c *s3store.Config) { c.URL = "https://" + bucket }, nil, []string{"does not start with s3://"}},
		{"a bad bucket name", func(c *s3store.Config) { c.URL = "s3://A_B/x" }, nil, []string{"names no valid bucket"}},
		{"a prefix with ..", func(c *s3store.Config) { c.URL = "s3://" + bucket + "/a/../b" }, nil, []string{`prefix element ".."`}},
		{"nothing listening", func(c *s3store.Config) { c.Endpoint = "http://127.0.0.1:1" }, nil, []string{"cannot reach bucket " + bucket + " at http://127.0.0.1:1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s3store.Config{URL: "s3://" + bucket + "/rec", Endpoint: srv.Endpoint, Region: tests3.Region,
				AccessKeyID: tests3.AccessKey, SecretAccessKey: tests3.SecretKey}
			tt.edit(&cfg)
			_, err := s3store.Open(t.Context(), cfg)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			t.Logf("Open: %v", err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Open: %v; want %v in its chain", err, tt.is)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open: %v; want it to say %q", err, w)
				}
			}
		})
	}
	if keys := objects(t, srv, bucket, ""); len(keys) != 0 {
		t.Errorf("Open left %v in the bucket", keys)
	}
}

// fakeIMDS is an EC2 instance metadata service that hands out the role
// credentials key and secret, IMDSv2 only (as http_tokens = "required"
// makes it): every read needs the session token a PUT gave.
type fakeIMDS struct {
	key, secret string
	reads       atomic.Int32 // credentials read with the token
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const token, role = "imds-session-token", "porthole-node"
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "no TTL", http.StatusBadRequest)
			return
		}
		io.WriteString(w, token)
		return
	}
	if r.Method != http.MethodGet || r.Header.Get("X-aws-ec2-metadata-token") != token {
		http.Error(w, "IMDSv2 only", http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case "/latest/meta-data/iam/security-credentials/":
		io.WriteString(w, role)
	case "/latest/meta-data/iam/security-credentials/" + role:
		f.reads.Add(1)
		fmt.Fprintf(w, `{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":%q,"SecretAccessKey":%q,"Token":"","Expiration":%q}`,
			f.key, f.secret, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	default:
		http.NotFound(w, r)
	}
}

// TestAWSRole: with AWSRole, the requests are signed with the credentials
// the instance metadata service hands out (IMDSv2), and a refusal names
// the role, not a key.
func TestAWSRole(t *testing.T) {
	t.Parallel()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	imds := &fakeIMDS{key: tests3.AccessKey, secret: tests3.SecretKey}
	md := httptest.NewServer(imds)
	t.Cleanup(md.Close)
	s := open(t, srv, bucket, func(c *s3store.Config) {
		c.AccessKeyID, c.SecretAccessKey, c.AWSRole, c.RoleEndpoint = "", "", true, md.URL
	})
	k := recstore.Key{Fleet: "flt_1", Session: "ses_1"}
	if err := s.Append(t.Context(), k, "events.jsonl", 0, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, k, "events.jsonl"); got != "{}\n" {
		t.Errorf("read %q; want %q", got, "{}\n")
	}
	if imds.reads.Load() == 0 {
		t.Error("the role's credentials were never read from the metadata service")
	}

	wrong := httptest.NewServer(&fakeIMDS{key: tests3.AccessKey, secret: "not-the-secret"})
	t.Cleanup(wrong.Close)
	for _, tt := range []struct {
		name  string
		edit  func(*s3store.Config)
		is    error
		words []string
	}{
		{"a role the bucket refuses", func(c *s3store.Config) { c.RoleEndpoint = wrong.URL }, s3store.ErrAccessDenied,
			[]string{"refused the credentials of this machine's AWS role to bucket " + bucket, "role's policy"}},
		{"a key and the role", func(c *s3store.Config) { c.AccessKeyID = tests3.AccessKey }, nil, []string{"cannot both"}},
		{"no metadata service", func(c *s3store.Config) { c.RoleEndpoint = "http://127.0.0.1:1" }, nil, []string{"cannot reach bucket " + bucket}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s3store.Config{URL: "s3://" + bucket + "/rec", Endpoint: srv.Endpoint, Region: tests3.Region, AWSRole: true, RoleEndpoint: md.URL}
			tt.edit(&cfg)
			_, err := s3store.Open(t.Context(), cfg)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			t.Logf("Open: %v", err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Open: %v; want %v in its chain", err, tt.is)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open: %v; want it to say %q", err, w)
				}
			}
		})
	}
}
