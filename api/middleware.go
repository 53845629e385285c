package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// reqInfo is what the outer middleware learns about a request from the
// handlers below it, for its log line and metrics.
type reqInfo struct {
	id     string // random, sent back in X-Request-Id and named in internal errors
	route  string // the route pattern, set once routed
	userID string // the caller, set once authenticated
	quiet  bool   // log the request at debug level only
}

type reqInfoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

func requestID(ctx context.Context) string { return infoFrom(ctx).id }

// unmatchedRoute labels requests no route matched, keeping the metrics'
// route label bounded.
const unmatchedRoute = "unmatched"

// instrument gives each request an ID, and logs and counts it when
// answered. It recovers a handler's panic into an internal error so one bug
// does not take down the connection without a trace. It never logs headers
// or bodies: they carry passwords and tokens.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{id: newRequestID(), route: unmatchedRoute}
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
		w.Header().Set("X-Request-Id", ri.id)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				err := fmt.Errorf("panic: %v\n%s", v, debug.Stack())
				if sw.status == 0 {
					s.writeError(sw, r, err)
				} else {
					s.logger.Error("panic after the answer began", "request_id", ri.id, "err", err)
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			s.metrics.requests.WithLabelValues(ri.route, strconv.Itoa(status)).Inc()
			s.metrics.duration.WithLabelValues(ri.route).Observe(elapsed.Seconds())
			level := slog.LevelInfo
			if ri.quiet {
				level = slog.LevelDebug
			}
			s.logger.Log(r.Context(), level, "request", "request_id", ri.id, "method", r.Method, "route", ri.route,
				"path", r.URL.Path, "status", status, "duration", elapsed, "user", ri.userID,
				"remote", r.RemoteAddr)
		}()
		next.ServeHTTP(sw, r)
	})
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
