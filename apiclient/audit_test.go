package apiclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestAuditQueries: the audit calls send what GET /api/v1/audit and
// /api/v1/audit/verify take.
func TestAuditQueries(t *testing.T) {
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
		w.Write([]byte("null"))
	}))
	defer ts.Close()
	c, err := New(ts.URL, Options{Token: "pht_x"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	since := time.Date(2026, 11, 22, 11, 30, 0, 0, time.FixedZone("CET", 3600))
	for _, tt := range []struct {
		name string
		call func() error
		want string
	}{
		{"all", func() error { _, err := c.Audit(ctx, AuditFilter{}); return err }, "GET /api/v1/audit?"},
		{"filtered", func() error {
			_, err := c.Audit(ctx, AuditFilter{Fleet: "acme", Device: "dev1", Session: "ses_1", Since: since, After: 7, Limit: 50})
			return err
		}, "GET /api/v1/audit?after=7&device=dev1&fleet=acme&limit=50&session=ses_1&since=2026-11-22T10%3A30%3A00Z"},
		{"verify", func() error { _, err := c.VerifyAudit(ctx, ""); return err }, "GET /api/v1/audit/verify?"},
		{"verify with anchor", func() error { _, err := c.VerifyAudit(ctx, "5:ab"); return err }, "GET /api/v1/audit/verify?anchor=5%3Aab"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			if s := <-got; s != tt.want {
				t.Errorf("sent %q; want %q", s, tt.want)
			}
		})
	}
}
