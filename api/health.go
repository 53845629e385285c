package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/porthole/porthole/apitype"
)

// readyTimeout bounds the database check of /readyz: a load balancer
// asking must get an answer, not a hang.
const readyTimeout = 2 * time.Second

// serveHealthz answers ok while the process serves requests at all.
func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// serveReadyz answers ok when the database answers, else 503 (the cause
// goes to the log).
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.logger.Warn("not ready", "request_id", requestID(r.Context()), "err", err)
		s.writeError(w, r, errorf(http.StatusServiceUnavailable, apitype.CodeNotReady,
			"the database is not answering; the server log has details"))
		return
	}
	serveHealthz(w, r)
}

// metricsHandler serves the server's own registry, not the global one.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slogPrinter{s},
	})
}

// slogPrinter lets promhttp report failures to gather metrics to the
// server's log.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.logger.Error("serving metrics", "err", fmt.Sprint(v...)) }

// caKeys is GET /api/v1/ca: public keys only, so anyone may read them.
func (s *Server) caKeys(*call, *none) (apitype.CAKeys, error) {
	return apitype.CAKeys{HostCA: s.keys.HostCAPublicKey(), UserCA: s.keys.UserCAPublicKey(), RelayAddr: s.relayAddr}, nil
}
