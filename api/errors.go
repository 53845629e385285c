package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

// httpError is an answer for the caller: a status, a code from apitype and
// a sentence saying what happened and what to do. Handlers return it; any
// other error is internal, logged with its cause and answered without it.
type httpError struct {
	status  int
	code    string
	message string
	header  http.Header // extra response headers, such as Retry-After
	wrapped error       // for errors.Is, when the answer stands for a sentinel
}

func (e *httpError) Error() string { return e.message }
func (e *httpError) Unwrap() error { return e.wrapped }

func errorf(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *httpError {
	return errorf(http.StatusBadRequest, apitype.CodeBadRequest, format, args...)
}

func notFound(format string, args ...any) *httpError {
	return errorf(http.StatusNotFound, apitype.CodeNotFound, format, args...)
}

func forbidden(format string, args ...any) *httpError {
	return errorf(http.StatusForbidden, apitype.CodeForbidden, format, args...)
}

func unauthenticated(format string, args ...any) *httpError {
	return errorf(http.StatusUnauthorized, apitype.CodeUnauthenticated, format, args...)
}

func conflict(format string, args ...any) *httpError {
	return errorf(http.StatusConflict, apitype.CodeConflict, format, args...)
}

// statusClientClosed answers a request its client cancelled (nginx's 499).
const statusClientClosed = 499

// writeError answers err. An *httpError is told as it is; anything else is
// logged with the request's ID and answered with that ID only, never the
// cause (which may name files, queries or keys).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away (a long poll it no longer needs): nothing
		// failed, and nobody reads the answer.
		s.logger.Debug("request ended by the client", "request_id", requestID(r.Context()), "method", r.Method, "path", r.URL.Path)
		he = errorf(statusClientClosed, apitype.CodeInternal, "the request was cancelled")
	}
	if he == nil && (errors.Is(err, store.ErrDiskFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		// Not a bug to hide behind an ID: the operator has a disk to
		// clear, and the caller should know nothing was changed.
		id := requestID(r.Context())
		s.logger.Error("the server's disk is full", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		he = errorf(http.StatusInsufficientStorage, apitype.CodeDiskFull,
			"the server's disk is full, so nothing was changed; ask its operator to make room (the server's log has details, ID %s)", id)
	}
	if he == nil && !errors.As(err, &he) {
		id := requestID(r.Context())
		s.logger.Error("internal error", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		he = errorf(http.StatusInternalServerError, apitype.CodeInternal,
			"internal error (ID %s); the server log has details", id)
	}
	for k, v := range he.header {
		w.Header()[k] = v
	}
	writeJSON(w, he.status, apitype.ErrorBody{Error: apitype.ErrorDetail{Code: he.code, Message: he.message}})
}

// writeJSON answers v as JSON with status. Answers may carry secrets
// (tokens, passwords, TOTP URIs) and are never to be cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(v)
}
