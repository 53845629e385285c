package agentowner

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/control"
)

// Request is POST /v1/request.
type Request struct {
	Reason string `json:"reason,omitempty"`
	// ForS is how long the window lasts, in seconds. Zero: 1 h.
	ForS int `json:"for_s,omitempty"`
}

// RequestAnswer is the support window after POST /v1/request.
type RequestAnswer struct {
	// Opened is false when a window was open already: it is that one.
	Opened bool                      `json:"opened"`
	Mode   agentconsent.Mode         `json:"mode"`
	Device string                    `json:"device"`
	Window agentconsent.WindowStatus `json:"window"`
}

// Answer is POST /v1/approve and /v1/deny: the session, or an
// unambiguous part of its id; empty for the only one waiting.
type Answer struct {
	Session string `json:"session,omitempty"`
}

// RevokeAnswer says what POST /v1/revoke ended.
type RevokeAnswer struct {
	Sessions     int  `json:"sessions"`
	WindowClosed bool `json:"window_closed"`
}

// Status is GET /v1/status.
type Status struct {
	agentconsent.Status
	// Page is a link that opens the local page, when it is served: over
	// the socket, a fresh one-time link (it lets one browser in, within
	// PageLinkTTL); on the page itself, its plain address.
	Page string `json:"page,omitempty"`
}

// Options are the inputs of New.
type Options struct {
	Consent *agentconsent.Consent // required
	// Sessions are the sessions running, which the owner's revoke ends
	// (the agent's Tunnels). Required.
	Sessions Sessions
	// StateDir holds the event log shown as history. Empty: no history.
	StateDir string
	Logger   *slog.Logger
}

// Sessions are the sessions the agent runs, as the owner's revoke ends
// them; the agent's Tunnels is one.
type Sessions interface {
	// Sessions are the ids of the sessions open.
	Sessions() []string
	// CloseAll ends every session at once, for reason.
	CloseAll(reason control.CloseReason)
}

// Server serves the owner's control: the socket API and the local page.
type Server struct {
	consent  *agentconsent.Consent
	sessions Sessions
	stateDir string
	log      *slog.Logger
	token    string // the page's per-process token
	auth     pageAuth

	mu   sync.Mutex
	page string // guarded by mu; the page's URL once served
}

// New checks opts.
func New(opts Options) (*Server, error) {
	if opts.Consent == nil || opts.Sessions == nil {
		return nil, errors.New("agentowner: the owner's control needs Consent and Sessions")
	}
	l := &Server{consent: opts.Consent, sessions: opts.Sessions, stateDir: opts.StateDir, log: opts.Logger, token: rand.Text()}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

// ServeSocket serves the JSON API on ln until ctx ends, then closes ln.
func (l *Server) ServeSocket(ctx context.Context, ln net.Listener) error {
	return serveUntil(ctx, ln, l.apiHandler(false))
}

// serveUntil serves h on ln until ctx ends.
func serveUntil(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// apiHandler is the JSON API, on paths /v1/... onPage is true for the
// page's own calls: its status then carries the page's plain address, not
// a login link.
func (l *Server) apiHandler(onPage bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeLocal(w, http.StatusOK, l.status(!onPage))
	})
	mux.HandleFunc("POST /v1/request", func(w http.ResponseWriter, r *http.Request) {
		var req Request
		if !readLocal(w, r, &req) {
			return
		}
		if req.ForS < 0 {
			localError(w, http.StatusBadRequest, "for_s cannot be negative")
			return
		}
		ws, opened, err := l.consent.Request(req.Reason, time.Duration(req.ForS)*time.Second)
		if err != nil {
			localError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeLocal(w, http.StatusOK, RequestAnswer{Opened: opened, Mode: l.consent.Mode(), Device: l.consent.Device(), Window: ws})
	})
	answer := func(approve bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req Answer
			if !readLocal(w, r, &req) {
				return
			}
			id, err := l.consent.Answer(req.Session, approve)
			if err != nil {
				status := http.StatusConflict
				if errors.Is(err, agentconsent.ErrNoSuchApproval) {
					status = http.StatusNotFound
				}
				localError(w, status, err.Error())
				return
			}
			writeLocal(w, http.StatusOK, Answer{Session: id})
		}
	}
	mux.HandleFunc("POST /v1/approve", answer(true))
	mux.HandleFunc("POST /v1/deny", answer(false))
	mux.HandleFunc("POST /v1/revoke", func(w http.ResponseWriter, r *http.Request) {
		writeLocal(w, http.StatusOK, l.Revoke())
	})
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		n := 50
		if v := r.URL.Query().Get("n"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 10000 {
				localError(w, http.StatusBadRequest, "n must be 1 to 10000")
				return
			}
		}
		events, err := l.history(n)
		if err != nil {
			l.log.Error("reading the event log for the owner", "err", err)
			localError(w, http.StatusInternalServerError, "the event log cannot be read: "+err.Error())
			return
		}
		writeLocal(w, http.StatusOK, events)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		localError(w, http.StatusNotFound, "no such command: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// Revoke is the owner's kill switch: the support window closes (so nothing
// new gets in), then every session ends at once, its engineers told "the
// owner of <device> ended this session", and the server told (tunnel_down
// revoked, and the support request closed).
func (l *Server) Revoke() RevokeAnswer {
	closed := l.consent.Revoke()
	n := len(l.sessions.Sessions())
	l.sessions.CloseAll(control.CloseRevoked)
	l.consent.Revoked(n, closed)
	l.log.Warn("the owner revoked access", "sessions", n, "window_closed", closed)
	return RevokeAnswer{Sessions: n, WindowClosed: closed}
}

// status is the consent as it stands; with link, Page is a fresh login
// link to the page (only the socket, which is the owner's, hands them out).
func (l *Server) status(link bool) Status {
	page := l.PageURL()
	if link {
		page = l.PageLink()
	}
	return Status{Status: l.consent.Status(), Page: page}
}

// history reads the last n events of the event log, oldest first.
func (l *Server) history(n int) ([]json.RawMessage, error) {
	if l.stateDir == "" {
		return []json.RawMessage{}, nil
	}
	return agentlog.Tail(l.stateDir, n)
}

// readLocal decodes a JSON body (an empty one is the zero value).
func readLocal(w http.ResponseWriter, r *http.Request, dst any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	if err != nil {
		localError(w, http.StatusBadRequest, "the request is too large")
		return false
	}
	if len(body) == 0 {
		return true
	}
	if err := json.Unmarshal(body, dst); err != nil {
		localError(w, http.StatusBadRequest, "the request is not the JSON expected: "+err.Error())
		return false
	}
	return true
}

func writeLocal(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// localError is the API's error answer.
type errorBody struct {
	Error string `json:"error"`
}

func localError(w http.ResponseWriter, status int, msg string) {
	writeLocal(w, status, errorBody{Error: msg})
}

// defaultSocketGroup is the group given the socket when the config names
// none, if it exists: the device's owners, who may read the agent's log
// too.
const defaultSocketGroup = agentstate.OwnerGroup

// ListenSocket makes the owner's control socket at path: its directory if
// missing (0755), the socket with mode 0660 and group group (empty:
// agentstate.OwnerGroup when it exists), set before it appears under its name, so no
// one else can ever connect. A stale socket left by a dead agent is
// replaced; one that answers belongs to a running agent and is an error.
// Closing the listener removes the socket.
func ListenSocket(path, group string) (net.Listener, error) {
	gid := -1
	name := group
	if name == "" {
		name = defaultSocketGroup
	}
	g, err := user.LookupGroup(name)
	switch {
	case err == nil:
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("socket_group %q: gid %q", name, g.Gid)
		}
	case group != "": // named in the config: it must exist
		return nil, fmt.Errorf("socket_group %q: %w", group, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, explainSocket(path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it, or set socket: in the config to another path", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another porthole-agent is already serving its owner on %s; stop it, or set socket: in the config to another path", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, explainSocket(path, err)
		}
	}
	tmp := filepath.Join(dir, "."+filepath.Base(path)+"."+rand.Text()[:8])
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, explainSocket(path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ul.Close()
		os.Remove(tmp)
		return nil, explainSocket(path, err)
	}
	if err := os.Chmod(tmp, 0o660); err != nil {
		return fail(err)
	}
	if gid >= 0 {
		// Giving it to a group the agent is not in fails unless it runs
		// as root; the socket then stays the agent's user's own.
		_ = os.Lchown(tmp, -1, gid)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return &socketListener{UnixListener: ul, path: path}, nil
}

// socketListener removes its socket when closed.
type socketListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (s *socketListener) Close() error {
	err := s.UnixListener.Close()
	s.once.Do(func() { os.Remove(s.path) })
	return err
}

func explainSocket(path string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("cannot create the owner's control socket %s (%w): run the agent as root, or set socket: in the config to a path it may create", path, err)
	}
	return fmt.Errorf("creating the owner's control socket %s: %w", path, err)
}
