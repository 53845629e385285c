package api

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
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/internal/tests3"
	"github.com/porthole/porthole/recstore"
	"github.com/porthole/porthole/recstore/s3store"
)

// s3Node is an API server ("a node") whose recordings are in bucket of
// srv, through a store of its own.
func s3Node(t *testing.T, srv *tests3.Server, bucket string, wrap func(recstore.Store) recstore.Store) *httptest.Server {
	t.Helper()
	st, err := s3store.Open(t.Context(), s3store.Config{URL: "s3://" + bucket + "/recordings", Endpoint: srv.Endpoint,
		Region: tests3.Region, AccessKeyID: tests3.AccessKey, SecretAccessKey: tests3.SecretKey})
	must(t, err)
	var rs recstore.Store = st
	if wrap != nil {
		rs = wrap(st)
	}
	s, err := New(Config{Store: fx.store, Keys: fx.keys, Sessions: fx.srv.sessions, RelayAddr: "relay.example.com:443",
		Recordings: RecordingsConfig{Store: rs}})
	must(t, err)
	ts := startTLS(s.Handler(), fx.keys)
	t.Cleanup(ts.Close)
	return ts
}

// getRange GETs path from base with an Authorization header and a Range.
func getRange(t *testing.T, base, path, authz, rng string) response {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	must(t, err)
	req.Header.Set("Authorization", authz)
	req.Header.Set("Range", rng)
	resp, err := fx.ts.Client().Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// TestRecordingUploadS3: two API nodes keep recordings in one S3 bucket.
// A device uploads through both at once, each chunk sent again through
// the other node as a retry after a lost answer would be; the file is
// stored once, whole. Changed bytes are refused. Engineers and the
// device's owner read it back, in ranges, through either node, and
// deleting the device empties the bucket of it.
func TestRecordingUploadS3(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	nodes := []*httptest.Server{s3Node(t, srv, bucket, nil), s3Node(t, srv, bucket, nil)}
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	devs := []*apiclient.Client{recDevice(t, nodes[0].URL, d, key), recDevice(t, nodes[1].URL, d, key)}

	var cast strings.Builder
	cast.WriteString("{\"version\": 2, \"width\": 80, \"height\": 24}\n")
	for i := range 2000 {
		fmt.Fprintf(&cast, "[%d.5, \"o\", \"line %d\\r\\n\"]\n", i, i)
	}
	data := []byte(cast.String())
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			off := int64(0)
			for off < int64(len(data)) {
				end := min(off+4096, int64(len(data)))
				var n int64
				for j := range 2 { // the chunk, then its retry through the other node
					var err error
					n, err = devs[(i+j)%2].UploadRecordingFile(ctx, ses.ID, "0001-pty.cast", off, data[off:end])
					var gap *apiclient.UploadOffsetError
					if errors.As(err, &gap) {
						n, err = gap.Size, nil
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
				off = n
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	meta := []byte(`{"session":"` + ses.ID + `"}`)
	if _, err := devs[0].UploadRecordingFile(ctx, ses.ID, "meta.json", 0, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := devs[1].UploadRecordingFile(ctx, ses.ID, "meta.json", 0, meta); err != nil {
		t.Fatal(err)
	}
	_, err := devs[1].UploadRecordingFile(ctx, ses.ID, "0001-pty.cast", 10, []byte("forged"))
	wantCode(t, "rewriting what is held", err, http.StatusConflict, apitype.CodeUploadMismatch)
	if _, err := devs[0].CompleteRecording(ctx, ses.ID, map[string]int64{"0001-pty.cast": int64(len(data)), "meta.json": int64(len(meta))}); err != nil {
		t.Fatal(err)
	}

	// Engineers, through either node.
	aud := recUser(t, nodes[1].URL, "auditor")
	if b, err := aud.RecordingFile(ctx, ses.ID, "0001-pty.cast"); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("the cast read back: %d bytes, %v; want the %d sent", len(b), err, len(data))
	}
	if b, err := aud.RecordingFile(ctx, ses.ID, "meta.json"); err != nil || !bytes.Equal(b, meta) {
		t.Fatalf("meta.json read back: %q, %v; want the last one sent", b, err)
	}
	path := "/api/v1/sessions/" + ses.ID + "/recording/files/0001-pty.cast"
	if r := getRange(t, nodes[0].URL, path, "Bearer "+fx.tokens["auditor"], "bytes=4000-8999"); r.status != http.StatusPartialContent || !bytes.Equal(r.body, data[4000:9000]) {
		t.Errorf("a range across two parts: %d, %d bytes; want 206 with bytes 4000 to 8999", r.status, len(r.body))
	}
	// The device's owner, through the other.
	link, err := devs[0].OwnerLink(ctx)
	must(t, err)
	path = "/api/v1/owner/sessions/" + ses.ID + "/recording/files/0001-pty.cast"
	if r := getRange(t, nodes[1].URL, path, "Owner "+link.Token, fmt.Sprintf("bytes=-%d", 100)); r.status != http.StatusPartialContent || !bytes.Equal(r.body, data[len(data)-100:]) {
		t.Errorf("the owner's last 100 bytes: %d, %q", r.status, r.body)
	}

	// In the bucket: the file in parts of at most 4 KiB, as sent.
	var parts int
	for o := range srv.Client(t).ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "recordings/" + fl.ID + "/" + ses.ID + "/0001-pty.cast/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		parts++
	}
	if want := (len(data) + 4095) / 4096; parts < want {
		t.Errorf("the bucket holds %d parts of the cast; want at least %d", parts, want)
	}

	if r := do(t, nodes[0], "DELETE", "/api/v1/devices/"+d.ID, fx.tokens["owner"], nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	for o := range srv.Client(t).ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "recordings/", Recursive: true}) {
		if strings.Contains(o.Key, ses.ID) {
			t.Errorf("%s is left in the bucket after the device was deleted", o.Key)
		}
	}
}

// racedStore writes other bytes at an append's offset just before it, as
// an upload through a node that lost the session's lock would.
type racedStore struct{ recstore.Store }

func (r racedStore) Append(ctx context.Context, key recstore.Key, name string, offset int64, data []byte) error {
	if err := r.Store.Append(ctx, key, name, offset, []byte("other\n")); err != nil {
		return err
	}
	return r.Store.Append(ctx, key, name, offset, data)
}

// TestRecordingUploadS3Raced: an append that finds its offset taken by
// another upload is answered 503, to be sent again; sent again, it is
// checked against the bytes the other upload left.
func TestRecordingUploadS3Raced(t *testing.T) {
	t.Parallel()
	srv := tests3.Start(t)
	node := s3Node(t, srv, srv.Bucket(t), func(s recstore.Store) recstore.Store { return racedStore{s} })
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	dev := recDevice(t, node.URL, d, key)
	_, err := dev.UploadRecordingFile(t.Context(), ses.ID, "events.jsonl", 0, []byte("{\"event\":\"connected\"}\n"))
	wantCode(t, "an upload raced", err, http.StatusServiceUnavailable, apitype.CodeUnavailable)
	_, err = dev.UploadRecordingFile(t.Context(), ses.ID, "events.jsonl", 0, []byte("{\"event\":\"connected\"}\n"))
	wantCode(t, "the same upload again", err, http.StatusConflict, apitype.CodeUploadMismatch)
}
