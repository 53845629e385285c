package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClientCancelledIsNoInternalError: a request whose client went away
// (the CLI's long poll, once the relay has answered) is not logged as an
// internal error: under load those drowned the server's real errors.
func TestClientCancelledIsNoInternalError(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("GET", "/api/v1/sessions/ses_1", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	s.writeError(w, r, fmt.Errorf("looking up the bearer token: %w", context.Canceled))
	if w.Code != statusClientClosed || strings.Contains(logs.String(), "internal error") {
		t.Errorf("a cancelled request: status %d, log %q; want %d and no internal error", w.Code, logs.String(), statusClientClosed)
	}

	// The same error while the client still waits is the server's.
	r = httptest.NewRequest("GET", "/api/v1/sessions/ses_1", nil)
	w = httptest.NewRecorder()
	s.writeError(w, r, fmt.Errorf("store: %w", context.Canceled))
	if w.Code != 500 || !strings.Contains(logs.String(), "internal error") {
		t.Errorf("a store cancelled under a waiting client: status %d, log %q; want 500, logged", w.Code, logs.String())
	}
}
