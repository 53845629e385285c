package apiclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestRetryOnAnotherNode: a GET is sent again when the node under it dies
// (its connection is cut before an answer) or a load balancer answers
// 502/503/504, and the next node's answer is the result; a PUT or DELETE
// that may have reached a server, and any POST, are not (sent twice they
// could undo a change or open a second session); and a node that keeps
// failing is reported after the last try.
func TestRetryOnAnotherNode(t *testing.T) {
	var calls atomic.Int64
	var failFirst atomic.Int64 // how many calls fail before the answers come
	var cut atomic.Bool        // fail by cutting the connection, else by 503
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n <= failFirst.Load() {
			if cut.Load() {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close() // the node died under the request
				}
				return
			}
			http.Error(w, "no server is available to handle this request", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`[]`))
	}))
	defer ts.Close()
	c, err := New(ts.URL, Options{Token: "pht_x"})
	if err != nil {
		t.Fatal(err)
	}
	// A new connection per request, so that net/http's own retry of a
	// request on a kept-alive connection that closed does not add to the
	// count.
	c.http.Transport.(*http.Transport).DisableKeepAlives = true
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		cut       bool
		fail      int64
		call      func() error
		wantCalls int64
		wantErr   bool
	}{
		{"GET, connection cut once", true, 1, func() error { _, err := c.Fleets(ctx); return err }, 2, false},
		{"GET, load balancer 503 twice", false, 2, func() error { _, err := c.Fleets(ctx); return err }, 3, false},
		{"DELETE, connection cut once (it may have been done)", true, 1, func() error { return c.RevokeToken(ctx, "t1") }, 1, true},
		{"PUT, 503", false, 1, func() error { return c.SetMember(ctx, "acme", "bob@example.com", "operator") }, 1, true},
		{"GET, failing every time", true, 10, func() error { _, err := c.Fleets(ctx); return err }, 3, true},
		{"POST, connection cut", true, 1, func() error { _, err := c.CreateFleet(ctx, "acme"); return err }, 1, true},
		{"POST, 503", false, 1, func() error { _, err := c.CreateFleet(ctx, "acme"); return err }, 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			failFirst.Store(tt.fail)
			cut.Store(tt.cut)
			err := tt.call()
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v; want an error: %v", err, tt.wantErr)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("%d requests reached the server; want %d", n, tt.wantCalls)
			}
		})
	}
}

// TestRetryWhenNotSent: a PUT or DELETE whose connection could not be
// made (it reached no server) is sent again.
func TestRetryWhenNotSent(t *testing.T) {
	var calls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ts.Close()
	var dials atomic.Int64
	c, err := New(ts.URL, Options{Token: "pht_x", NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}})
	if err != nil {
		t.Fatal(err)
	}
	c.http.Transport.(*http.Transport).DisableKeepAlives = true
	if err := c.RevokeToken(context.Background(), "t1"); err != nil {
		t.Fatalf("a DELETE whose first dial failed: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d requests reached the server; want 1", n)
	}
}
