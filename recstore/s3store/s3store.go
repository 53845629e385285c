// Package s3store keeps the recordings devices upload (a recstore.Store)
// in S3-compatible object storage, shared by every server node: AWS S3,
// MinIO, versitygw, or another server that honours conditional writes.
//
// # Layout
//
// Under the bucket and prefix of s3://bucket/prefix:
//
//	prefix/<fleet>/<session>/<name>/<offset>   one object per append
//	prefix/.locks/<fleet>/<session>            the session's upload lease
//
// S3 objects cannot be appended to, and rewriting a whole file to add a
// chunk would cost a file's size per chunk. So each Append is an object of
// its own, keyed by the offset it starts at, in 20 decimal digits so that
// listing them orders them. A file is the run of parts that starts at 0
// and in which each part starts where the one before ends: Size, ReadAt
// and Open list the parts (one LIST request per 1000 parts; the agent
// sends chunks of up to 1 MiB, so a 64 MiB file is a page). Parts off that
// run (none are written but by a writer that lost its lock, see below) are
// not part of the file. Replace removes the parts past 0, last first, and
// then writes part 0: a reader sees the old file, a shorter prefix of it,
// or the new one, never a mix. meta.json, the only file the API replaces,
// is one part, replaced by one PUT.
//
// # Idempotence
//
// Parts are written with a conditional PUT (If-None-Match: *), which the
// S3 server refuses (412) when the object already exists. Two nodes can
// never both write the part at one offset, so a file is never torn, even
// by a node that lost its lock without knowing it. A refused part is read
// back: the same bytes (a retry of a PUT whose answer was lost, or the
// same chunk sent twice) are success; other bytes are
// recstore.ErrOffsetTaken, and the file holds the other writer's, whole.
// Open checks, at startup, that the server refuses a second conditional
// PUT: one that ignores If-None-Match (older MinIO and Ceph releases)
// would lose this guarantee silently, so it is refused with a sentence.
//
// # The lock across nodes
//
// Lock is a lease: a small JSON object per session, written with
// conditional PUTs. Taking it creates it (If-None-Match: *) or replaces a
// released or expired one (If-Match: its ETag); its holder renews it
// (If-Match) every third of its TTL, and releases it (If-Match) when done.
// A lease whose ETag has not changed for its TTL, counted on the waiting
// node's own clock from when it first saw that ETag, belongs to a dead
// node and is taken over: no clocks of two machines are compared (the
// rule of Kubernetes' leader election). A node that comes back after its
// lease was taken finds its renewal and release refused, and its writes at
// taken offsets are refused too (above). Releasing writes a released
// lease rather than deleting it: S3 has no delete conditional on the ETag
// that every server supports, and an unconditional delete could remove the
// lease another node took meanwhile. So each session keeps a lease object
// of about 100 bytes, which Delete removes with the recording.
//
// The alternative, PostgreSQL advisory locks through the server's store,
// was not taken: it would tie the recordings to PostgreSQL (SQLite
// deployments keep one node, but the store would still need a lock of its
// own), hold a database connection per upload in flight, and notice a dead
// node only when TCP keepalives give up on its connection (two hours by
// default). The lease needs nothing but the bucket.
//
// Within one process, uploads of a session queue on a recstore.KeyLocks
// before the lease, so only one of them polls the object store.
package s3store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/porthole/porthole/recstore"
)

// DefaultLockTTL is how long a lease outlives its last renewal when
// Config.LockTTL is zero: a node that dies holding one holds up that
// session's uploads this long, and the agent tries again meanwhile.
const DefaultLockTTL = 30 * time.Second

// Sentinels in the chain of Open's errors, for the server to say which
// setting to fix.
var (
	ErrNoBucket            = errors.New("s3store: no such bucket")
	ErrAccessDenied        = errors.New("s3store: access denied")
	ErrNoConditionalWrites = errors.New("s3store: the server ignores conditional writes")
)

// kindError is a sentence for people that errors.Is matches to its kind,
// one of the sentinels above.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func kindf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: "s3store: " + fmt.Sprintf(format, args...)}
}

// Config says where the recordings are kept and how to reach them.
type Config struct {
	// URL names the bucket and the prefix of every key:
	// s3://bucket/prefix, or s3://bucket for none. Required.
	URL string
	// Endpoint is the S3 server's URL: https://host[:port], or http://
	// on a private network. Empty: AWS S3, https://s3.amazonaws.com.
	Endpoint string
	// Region is the bucket's region. Empty: asked of the server.
	Region string
	// AccessKeyID and SecretAccessKey sign the requests; SessionToken
	// goes with temporary credentials. Both keys are required, unless
	// AWSRole is set.
	AccessKeyID, SecretAccessKey, SessionToken string
	// AWSRole signs the requests with the temporary credentials of the
	// AWS role the machine runs as instead, renewed before they expire:
	// a pod's web identity (EKS, AWS_WEB_IDENTITY_TOKEN_FILE and
	// AWS_ROLE_ARN in the environment), a container's task role (ECS,
	// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), else the EC2
	// instance profile, asked of the instance metadata service with a
	// session token (IMDSv2). The keys above must then be empty.
	AWSRole bool
	// RoleEndpoint is where AWSRole asks for the credentials. Empty: as
	// the environment says, else the instance metadata service at
	// http://169.254.169.254 (tests set their own).
	RoleEndpoint string
	// Transport makes the HTTP requests. Nil: Go's default transport
	// (the system's roots of trust for https).
	Transport http.RoundTripper
	// LockTTL is how long a lease lasts without renewal. Zero:
	// DefaultLockTTL.
	LockTTL time.Duration
	// Holder names this node in the leases it takes, for people reading
	// them or waiting on them. Empty: the host name.
	Holder string
}

// Store is a recstore.Store in a bucket. Make it with Open.
type Store struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ending in "/"
	endpoint string // for messages
	ttl      time.Duration
	holder   string // host name and a random tag: unique to this Store

	local recstore.KeyLocks // one upload a session in this process

	mu   sync.Mutex
	seen map[recstore.Key]seenLease // guarded by mu: leases of others, as first seen
	held map[recstore.Key]int       // guarded by mu: leases this Store holds
}

var _ recstore.Store = (*Store)(nil)

// seenLease is a version of another node's lease and when this node first
// saw it.
type seenLease struct {
	etag  string
	since time.Time
}

// maxSeen bounds Store.seen: a node waits on a few sessions at a time.
const maxSeen = 10000

// retries is how often a request that failed on the network is tried
// again: the agent tries the whole upload again later, so a server that is
// down answers the device in seconds rather than after minio-go's ten.
const retries = 3

// Open checks cfg, reaches the bucket, and checks that the server honours
// conditional writes, before the server takes its first upload.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	bucket, prefix, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "https://s3.amazonaws.com"
	}
	ep, err := url.Parse(endpoint)
	if err != nil || ep.Scheme != "https" && ep.Scheme != "http" || ep.Host == "" || ep.Path != "" && ep.Path != "/" || ep.RawQuery != "" || ep.User != nil {
		return nil, fmt.Errorf("s3store: endpoint %q must be an https:// (or http://) URL of scheme, host and port only, like https://minio.example.com:9000", cfg.Endpoint)
	}
	creds := credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	who, fix := fmt.Sprintf("access key %q", cfg.AccessKeyID), "check the key, its secret, and its rights to the bucket"
	switch {
	case cfg.AWSRole && (cfg.AccessKeyID != "" || cfg.SecretAccessKey != "" || cfg.SessionToken != ""):
		return nil, errors.New("s3store: an access key and the AWS role cannot both sign the requests: keep one")
	case cfg.AWSRole:
		creds = credentials.New(&credentials.IAM{Endpoint: cfg.RoleEndpoint})
		who, fix = "the credentials of this machine's AWS role", "check that the role's policy lets it list, read, write and delete objects in it"
	case cfg.AccessKeyID == "" || cfg.SecretAccessKey == "":
		return nil, errors.New("s3store: an access key ID and its secret are required")
	}
	s := &Store{
		bucket: bucket, prefix: prefix, endpoint: ep.Scheme + "://" + ep.Host,
		ttl: cfg.LockTTL, holder: cfg.Holder,
		seen: map[recstore.Key]seenLease{}, held: map[recstore.Key]int{},
	}
	if s.ttl <= 0 {
		s.ttl = DefaultLockTTL
	}
	if s.holder == "" {
		s.holder, _ = os.Hostname()
	}
	s.holder += "/" + randomHex(4)
	s.client, err = minio.New(ep.Host, &minio.Options{
		Creds:      creds,
		Secure:     ep.Scheme == "https",
		Region:     cfg.Region,
		Transport:  cfg.Transport,
		MaxRetries: retries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	if err := s.check(ctx, who, fix); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseURL splits s3://bucket/prefix into the bucket and the prefix of the
// keys ("" or ending in "/").
func ParseURL(raw string) (bucket, prefix string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("s3store: %q %s; write it like s3://bucket or s3://bucket/prefix", raw, why)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", "", bad("is not a URL")
	case u.Scheme != "s3":
		return "", "", bad("does not start with s3://")
	case u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "":
		return "", "", bad("has more than a bucket and a prefix")
	}
	if err := s3utils.CheckValidBucketNameStrict(u.Host); err != nil {
		return "", "", bad(fmt.Sprintf("names no valid bucket (%v)", err))
	}
	p := strings.Trim(u.Path, "/")
	if p != "" {
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." || !recstore.ValidName(seg) {
				return "", "", bad(fmt.Sprintf("has a prefix element %q that cannot name a folder", seg))
			}
		}
		p += "/"
	}
	return u.Host, p, nil
}

// check reaches the bucket and makes sure the server refuses a second
// conditional PUT of one key. who names the credentials and fix what to
// check when they are refused, for people.
func (s *Store) check(ctx context.Context, who, fix string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	switch code := minio.ToErrorResponse(err); {
	case code.StatusCode == http.StatusForbidden || code.Code == "AccessDenied" || code.Code == "InvalidAccessKeyId" || code.Code == "SignatureDoesNotMatch":
		return kindf(ErrAccessDenied, "the S3 server at %s refused %s to bucket %s: %s", s.endpoint, who, s.bucket, fix)
	case err != nil:
		return fmt.Errorf("s3store: cannot reach bucket %s at %s: %w", s.bucket, s.endpoint, err)
	case !ok:
		return kindf(ErrNoBucket, "the S3 bucket %s does not exist at %s: create it, or name another", s.bucket, s.endpoint)
	}
	probe := s.prefix + ".locks/.probe-" + randomHex(8)
	defer s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, probe, minio.RemoveObjectOptions{})
	for try := range 2 {
		_, err := s.put(ctx, probe, []byte("probe"), ifNoneMatch)
		switch {
		case try == 0 && err != nil:
			return fmt.Errorf("s3store: writing a test object to bucket %s at %s: %w", s.bucket, s.endpoint, s.explain(err))
		case try == 1 && err == nil:
			return kindf(ErrNoConditionalWrites, "the S3 server at %s wrote over an object despite If-None-Match: *, "+
				"so uploads through several server nodes cannot be kept apart on it: use AWS S3, or a recent MinIO, Ceph or versitygw",
				s.endpoint)
		case try == 1 && !preconditionFailed(err):
			return fmt.Errorf("s3store: writing a test object to bucket %s at %s: %w", s.bucket, s.endpoint, s.explain(err))
		}
	}
	return nil
}

// Conditions of a PUT.
const (
	ifNoneMatch = "*" // only if the key does not exist
	always      = ""  // whatever is there
)

// put writes an object in one PUT, under a condition: ifNoneMatch,
// always, or an ETag the object must have. It returns the new ETag.
func (s *Store) put(ctx context.Context, key string, data []byte, cond string) (string, error) {
	opts := minio.PutObjectOptions{DisableMultipart: true, ContentType: "application/octet-stream"}
	switch cond {
	case always:
	case ifNoneMatch:
		opts.SetMatchETagExcept("*")
	default:
		opts.SetMatchETag(cond)
	}
	info, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return "", err
	}
	return info.ETag, nil
}

// preconditionFailed reports whether err is a conditional write refused:
// the condition did not hold (412), another conditional write to the key
// was in flight (AWS's 409), or the object an If-Match named is gone.
func preconditionFailed(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey":
		return true
	}
	return false
}

// explain turns the S3 errors a person can act on into sentences.
func (s *Store) explain(err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchBucket":
		return kindf(ErrNoBucket, "the S3 bucket %s no longer exists at %s: create it again", s.bucket, s.endpoint)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return kindf(ErrAccessDenied, "the S3 server at %s refused: %v", s.endpoint, err)
	}
	return err
}

// fileKey is the prefix of a file's parts, ending in "/".
func (s *Store) fileKey(key recstore.Key, name string) string {
	return s.sessionKey(key) + name + "/"
}

// sessionKey is the prefix of a session's files, ending in "/".
func (s *Store) sessionKey(key recstore.Key) string {
	return s.prefix + key.Fleet + "/" + key.Session + "/"
}

// leaseKey is the key of a session's lease.
func (s *Store) leaseKey(key recstore.Key) string {
	return s.prefix + ".locks/" + key.Fleet + "/" + key.Session
}

// partKey is the key of the part at offset.
func partKey(file string, offset int64) string {
	return fmt.Sprintf("%s%020d", file, offset)
}

// part is one object of a file.
type part struct {
	key       string
	off, size int64
	etag      string
	modified  time.Time
}

func (p part) end() int64 { return p.off + p.size }

// parts lists the objects of a file in the order of their offsets.
func (s *Store) parts(ctx context.Context, file string) ([]part, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the lister's goroutine on an early return
	var ps []part
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: file, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("s3store: listing %s in bucket %s at %s: %w", file, s.bucket, s.endpoint, s.explain(o.Err))
		}
		digits := strings.TrimPrefix(o.Key, file)
		off, err := strconv.ParseInt(digits, 10, 64)
		if len(digits) != 20 || err != nil || off < 0 {
			continue // not a part: nothing this package writes
		}
		ps = append(ps, part{key: o.Key, off: off, size: o.Size, etag: o.ETag, modified: o.LastModified})
	}
	slices.SortFunc(ps, func(a, b part) int { return cmp.Compare(a.off, b.off) })
	return ps, nil
}

// chain is the file: the run of parts from offset 0 in which each starts
// where the one before ends. Others are left over from a writer that lost
// its lock, or from a Replace cut short, and are not part of the file.
func chain(ps []part) []part {
	var out []part
	var end int64
	for _, p := range ps {
		if p.off == end && (p.size > 0 || len(out) == 0) {
			out = append(out, p)
			end = p.end()
		}
	}
	return out
}

// file is a file's parts and size; a file that does not exist has no
// parts.
func (s *Store) file(ctx context.Context, key recstore.Key, name string) (ps []part, size int64, err error) {
	if err := recstore.Check(key, name); err != nil {
		return nil, 0, err
	}
	all, err := s.parts(ctx, s.fileKey(key, name))
	if err != nil {
		return nil, 0, err
	}
	ps = chain(all)
	if len(ps) > 0 {
		size = ps[len(ps)-1].end()
	}
	return ps, size, nil
}

// Size implements recstore.Store.
func (s *Store) Size(ctx context.Context, key recstore.Key, name string) (int64, error) {
	_, size, err := s.file(ctx, key, name)
	return size, err
}

// ReadAt implements recstore.Store.
func (s *Store) ReadAt(ctx context.Context, key recstore.Key, name string, buf []byte, offset int64) error {
	ps, size, err := s.file(ctx, key, name)
	if err != nil {
		return err
	}
	if offset < 0 || offset+int64(len(buf)) > size {
		return fmt.Errorf("reading back %s: %d bytes at %d, past its end at %d: %w", name, len(buf), offset, size, io.EOF)
	}
	for _, p := range ps {
		if len(buf) == 0 {
			break
		}
		if p.end() <= offset {
			continue
		}
		n := min(int64(len(buf)), p.end()-offset)
		if err := s.readPart(ctx, p, offset-p.off, buf[:n]); err != nil {
			return fmt.Errorf("reading back %s: %w", name, err)
		}
		buf, offset = buf[n:], offset+n
	}
	return nil
}

// readPart fills buf from p at offset off within it.
func (s *Store) readPart(ctx context.Context, p part, off int64, buf []byte) error {
	body, err := s.getPart(ctx, p, off, off+int64(len(buf)))
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.ReadFull(body, buf); err != nil {
		return fmt.Errorf("s3store: reading %s: %w", p.key, err)
	}
	return nil
}

// getPart reads p from off up to end, provided it is still the object
// listed: a part replaced since answers an error, not other bytes.
func (s *Store) getPart(ctx context.Context, p part, off, end int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, end-1); err != nil {
		return nil, err
	}
	if p.etag != "" {
		opts.SetMatchETag(p.etag)
	}
	body, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, p.key, opts)
	if preconditionFailed(err) {
		return nil, fmt.Errorf("s3store: %s changed while it was read (replaced or deleted): %w", p.key, err)
	} else if err != nil {
		return nil, fmt.Errorf("s3store: reading %s in bucket %s at %s: %w", p.key, s.bucket, s.endpoint, s.explain(err))
	}
	return body, nil
}

// Append implements recstore.Store: data is one object, written only if
// no object holds its offset yet. If one does, the bytes are compared:
// the same are success, others recstore.ErrOffsetTaken.
func (s *Store) Append(ctx context.Context, key recstore.Key, name string, offset int64, data []byte) error {
	if err := recstore.Check(key, name); err != nil || len(data) == 0 {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("s3store: appending to %s at offset %d", name, offset)
	}
	k := partKey(s.fileKey(key, name), offset)
	_, err := s.put(ctx, k, data, ifNoneMatch)
	if err == nil {
		return nil
	} else if !preconditionFailed(err) {
		return fmt.Errorf("s3store: writing %s at %d to bucket %s at %s: %w", name, offset, s.bucket, s.endpoint, s.explain(err))
	}
	held, err := s.readObject(ctx, k)
	if err != nil {
		return fmt.Errorf("s3store: reading back %s at %d, which another upload wrote: %w", name, offset, err)
	}
	if !bytes.Equal(held, data) {
		return fmt.Errorf("%w: %s at %d (%d bytes there, %d sent)", recstore.ErrOffsetTaken, name, offset, len(held), len(data))
	}
	return nil
}

// readObject reads a whole object.
func (s *Store) readObject(ctx context.Context, key string) ([]byte, error) {
	body, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.explain(err)
	}
	defer body.Close()
	return io.ReadAll(body)
}

// Replace implements recstore.Store: the parts past 0 are removed, the
// last first, and part 0 is written in their place.
func (s *Store) Replace(ctx context.Context, key recstore.Key, name string, data []byte) error {
	if err := recstore.Check(key, name); err != nil {
		return err
	}
	file := s.fileKey(key, name)
	ps, err := s.parts(ctx, file)
	if err != nil {
		return err
	}
	for _, p := range slices.Backward(ps) {
		if p.off == 0 {
			continue
		}
		if err := s.client.RemoveObject(ctx, s.bucket, p.key, minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("s3store: removing %s, to replace %s: %w", p.key, name, s.explain(err))
		}
	}
	if _, err := s.put(ctx, partKey(file, 0), data, always); err != nil {
		return fmt.Errorf("s3store: writing %s to bucket %s at %s: %w", name, s.bucket, s.endpoint, s.explain(err))
	}
	return nil
}

// Delete implements recstore.Store: every object of the session goes,
// and its lease if this Store holds it (the API deletes under the lock).
func (s *Store) Delete(ctx context.Context, key recstore.Key) error {
	if err := recstore.CheckKey(key); err != nil {
		return err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objects := s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.sessionKey(key), Recursive: true})
	var listErr error // set by the lister before listed is closed
	toRemove := make(chan minio.ObjectInfo)
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		defer close(toRemove)
		for o := range objects {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			select {
			case toRemove <- o:
			case <-ctx.Done():
				return
			}
		}
	}()
	var errs []error
	for e := range s.client.RemoveObjects(ctx, s.bucket, toRemove, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("removing %s: %w", e.ObjectName, s.explain(e.Err)))
	}
	cancel() // the remover stopped taking objects only if ctx ended
	<-listed
	if listErr != nil {
		errs = append(errs, fmt.Errorf("listing: %w", s.explain(listErr)))
	}
	s.mu.Lock()
	holding := s.held[key] > 0
	s.mu.Unlock()
	if holding && len(errs) == 0 {
		if err := s.client.RemoveObject(parent, s.bucket, s.leaseKey(key), minio.RemoveObjectOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("removing the upload lease: %w", s.explain(err)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("s3store: deleting the recording of session %s from bucket %s at %s: %w", key.Session, s.bucket, s.endpoint, err)
	}
	return nil
}

// Open implements recstore.Store: the file as its parts are now, read
// with ctx.
func (s *Store) Open(ctx context.Context, key recstore.Key, name string) (recstore.File, error) {
	ps, size, err := s.file(ctx, key, name)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%w: %s", recstore.ErrNotExist, name)
	}
	f := &file{s: s, ctx: ctx, name: name, parts: ps, size: size}
	for _, p := range ps {
		if p.modified.After(f.mod) {
			f.mod = p.modified
		}
	}
	return f, nil
}

// file is a recstore.File over a file's parts: each Read continues the
// GET of the part under the position, or starts one from there.
type file struct {
	s     *Store
	ctx   context.Context
	name  string
	parts []part
	size  int64
	mod   time.Time

	pos     int64
	body    io.ReadCloser // the part being read from pos, or nil
	bodyEnd int64         // where the part of body ends
}

func (f *file) ModTime() time.Time { return f.mod }

func (f *file) Read(p []byte) (int, error) {
	if f.pos >= f.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if f.body == nil {
		i, _ := slices.BinarySearchFunc(f.parts, f.pos, func(p part, pos int64) int {
			switch {
			case p.end() <= pos:
				return -1
			case p.off > pos:
				return 1
			}
			return 0
		})
		pt := f.parts[i]
		body, err := f.s.getPart(f.ctx, pt, f.pos-pt.off, pt.size)
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", f.name, err)
		}
		f.body, f.bodyEnd = body, pt.end()
	}
	n, err := f.body.Read(p[:min(int64(len(p)), f.bodyEnd-f.pos)])
	f.pos += int64(n)
	switch {
	case f.pos == f.bodyEnd:
		f.closeBody()
		return n, nil
	case errors.Is(err, io.EOF):
		f.closeBody()
		return n, fmt.Errorf("reading %s: the object store sent less than the part holds: %w", f.name, io.ErrUnexpectedEOF)
	case err != nil:
		f.closeBody()
		return n, fmt.Errorf("reading %s: %w", f.name, err)
	}
	return n, nil
}

func (f *file) Seek(offset int64, whence int) (int64, error) {
	pos := offset
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		pos += f.pos
	case io.SeekEnd:
		pos += f.size
	default:
		return f.pos, fmt.Errorf("s3store: seeking in %s: whence %d", f.name, whence)
	}
	if pos < 0 {
		return f.pos, fmt.Errorf("s3store: seeking in %s to %d, before its start", f.name, pos)
	}
	if pos != f.pos {
		f.closeBody()
		f.pos = pos
	}
	return pos, nil
}

func (f *file) closeBody() {
	if f.body != nil {
		f.body.Close()
		f.body = nil
	}
}

func (f *file) Close() error {
	f.closeBody()
	return nil
}

// lease is the JSON of a session's lease object.
type lease struct {
	// Holder names the node (host name and a random tag).
	Holder string `json:"holder"`
	// Seq counts the renewals, so that each writes other bytes and gets
	// another ETag.
	Seq int `json:"seq"`
	// TTL is how long the holder lets the lease last without renewal.
	TTL string `json:"ttl"`
	// Released is set by the holder when it is done.
	Released bool `json:"released,omitempty"`
	// At is when it was written, by the holder's clock; for people.
	At time.Time `json:"at"`
}

// Lock implements recstore.Store: this process's lock of the session, then
// the lease across nodes, renewed until the returned function releases
// it.
func (s *Store) Lock(ctx context.Context, key recstore.Key) (func(), error) {
	if err := recstore.CheckKey(key); err != nil {
		return nil, err
	}
	unlockLocal, err := s.local.Lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("s3store: waiting for the upload lock of session %s: %w", key.Session, err)
	}
	var held string // the holder seen last, if any
	for {
		etag, holder, err := s.tryLease(ctx, key)
		if err != nil && ctx.Err() != nil && held != "" {
			// The wait ran out during a look at the lease: say who held it.
			unlockLocal()
			return nil, fmt.Errorf("s3store: waiting for the upload lease of session %s, held by %s: %w", key.Session, held, ctx.Err())
		}
		if err != nil {
			unlockLocal()
			return nil, fmt.Errorf("s3store: taking the upload lease of session %s in bucket %s at %s: %w", key.Session, s.bucket, s.endpoint, err)
		}
		held = holder
		if etag != "" {
			return s.hold(key, etag, unlockLocal), nil
		}
		select {
		case <-ctx.Done():
			unlockLocal()
			return nil, fmt.Errorf("s3store: waiting for the upload lease of session %s, held by %s: %w", key.Session, holder, ctx.Err())
		case <-time.After(s.pollEvery()):
		}
	}
}

// pollEvery is the wait between two looks at another node's lease: short
// (uploads are quick), jittered so that waiters spread out.
func (s *Store) pollEvery() time.Duration {
	base := min(s.ttl/10, 100*time.Millisecond)
	return base/2 + rand.N(base)
}

// tryLease takes key's lease if it is free, released or expired, and
// returns its ETag; or returns "" and who holds it.
func (s *Store) tryLease(ctx context.Context, key recstore.Key) (etag, holder string, err error) {
	lk := s.leaseKey(key)
	mine := lease{Holder: s.holder, TTL: s.ttl.String(), At: time.Now().UTC()}
	body, info, err := s.getLease(ctx, lk)
	switch {
	case err != nil:
		return "", "", err
	case body == nil:
		etag, err = s.put(ctx, lk, mustJSON(mine), ifNoneMatch)
	case body.Released || body.Holder == s.holder:
		// Released, or left by this Store, whose lock of the process
		// is held here, after a release that failed.
		mine.Seq = body.Seq + 1
		etag, err = s.put(ctx, lk, mustJSON(mine), info.ETag)
	default:
		ttl, perr := time.ParseDuration(body.TTL)
		if perr != nil || ttl <= 0 {
			ttl = s.ttl
		}
		s.mu.Lock()
		seen, ok := s.seen[key]
		if !ok || seen.etag != info.ETag {
			if len(s.seen) >= maxSeen {
				clear(s.seen)
			}
			seen = seenLease{etag: info.ETag, since: time.Now()}
			s.seen[key] = seen
		}
		s.mu.Unlock()
		if time.Since(seen.since) < ttl {
			return "", body.Holder, nil
		}
		// Unchanged for its whole TTL: its holder is gone.
		mine.Seq = body.Seq + 1
		etag, err = s.put(ctx, lk, mustJSON(mine), info.ETag)
	}
	if preconditionFailed(err) {
		return "", "another node", nil // taken meanwhile: look again
	} else if err != nil {
		return "", "", s.explain(err)
	}
	s.mu.Lock()
	delete(s.seen, key)
	s.held[key]++
	s.mu.Unlock()
	return etag, "", nil
}

// getLease reads a lease; a missing one is nil and no error.
func (s *Store) getLease(ctx context.Context, key string) (*lease, minio.ObjectInfo, error) {
	body, info, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return nil, info, nil
	} else if err != nil {
		return nil, info, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, 4096))
	if err != nil {
		return nil, info, err
	}
	var l lease
	if err := json.Unmarshal(data, &l); err != nil {
		// Not a lease of ours: treat it as one held by someone unknown,
		// which expires unless it changes.
		l = lease{Holder: "an unreadable lease"}
	}
	return &l, info, nil
}

// hold renews the lease taken with etag until the returned function
// releases it, then unlocks the process's lock.
func (s *Store) hold(key recstore.Key, etag string, unlockLocal func()) func() {
	lk := s.leaseKey(key)
	stop, done := make(chan struct{}), make(chan struct{})
	var seq int
	lost := false // set by the renewer, read after it is done
	go func() {
		defer close(done)
		t := time.NewTicker(s.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			seq++
			ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
			next, err := s.put(ctx, lk, mustJSON(lease{Holder: s.holder, Seq: seq, TTL: s.ttl.String(), At: time.Now().UTC()}), etag)
			cancel()
			switch {
			case err == nil:
				etag = next
			case preconditionFailed(err):
				lost = true // taken over (this node was too slow) or deleted with the recording
				return
			}
			// Any other failure: try again at the next tick; the lease
			// holds for a TTL.
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
			if !lost {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				// Refused (taken over, deleted) or failed: either way
				// another node gets the lease, at the latest when it
				// expires.
				_, _ = s.put(ctx, lk, mustJSON(lease{Holder: s.holder, Seq: seq + 1, TTL: s.ttl.String(), Released: true, At: time.Now().UTC()}), etag)
				cancel()
			}
			s.mu.Lock()
			if s.held[key]--; s.held[key] <= 0 {
				delete(s.held, key)
			}
			s.mu.Unlock()
			unlockLocal()
		})
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a lease always marshals
	}
	return b
}

// randomHex is n random bytes in hex, to tell apart names that need not
// be secret.
func randomHex(n int) string {
	var b strings.Builder
	for range n {
		fmt.Fprintf(&b, "%02x", rand.N(256))
	}
	return b.String()
}
