package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentowner"
	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/agent/agentretry"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agent/agentupload"
	"github.com/porthole/porthole/apiclient"
)

// Options are the inputs of New: what porthole-agent run reads from its
// flags, the state directory and the owner's config file.
type Options struct {
	// State is the enrolled device (agentstate.Load). Required.
	State *agentstate.State
	// Config is the owner's configuration. The zero value is the defaults.
	Config Config
	// Logger gets the agent's log. Nil: nothing is logged.
	Logger *slog.Logger
	// Status gets lines for a person: where the owner's socket and page
	// are, and the control channel's connection coming and going. Nil:
	// nothing is written.
	Status io.Writer
}

// Agent is a device's running agent, composed of its parts: the event log
// (opened once, for all of them), the recorder and the uploader of
// sessions, the owner's consent, the data path (Tunnels), the owner's
// socket and page, and the control channel. New opens them all; Run runs
// them until its context ends and returns only once every goroutine it
// started has ended, as daemon.Open and Serve do for the server.
type Agent struct {
	opts    Options
	log     *slog.Logger
	events  *agentlog.Log
	uploads *agentupload.Uploader
	rec     *agentrecord.Recordings
	clock   *ServerClock
	consent *agentconsent.Consent
	tunnels *Tunnels
	owner   *agentowner.Server
	sock    net.Listener // the owner's socket
	page    net.Listener // the owner's page; nil without local_ui
	server  *apiclient.Client

	closers []func() // what New opened, closed by close in reverse order
}

// New checks opts and opens everything the agent needs before it connects:
// the event log, the recordings (taking their lock), the owner's socket and
// page. Nothing touches the network yet. On an error, what was opened is
// closed again.
func New(opts Options) (_ *Agent, err error) {
	st := opts.State
	if st == nil {
		return nil, errors.New("agent: New needs a loaded State")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{opts: opts, log: opts.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	cfg := &opts.Config
	if a.events, err = agentlog.Open(filepath.Join(st.Dir, agentlog.File)); err != nil {
		return nil, err
	}
	a.onClose(func() { a.events.Close() })
	if a.uploads, err = agentupload.New(agentupload.Options{State: st, Logger: a.log, NetDial: cfg.NetDial()}); err != nil {
		return nil, err
	}
	if a.rec, err = agentrecord.Open(agentrecord.Options{StateDir: st.Dir, Log: a.events, Config: cfg.Recordings, RecordInput: cfg.RecordInput,
		Device: st.Enrollment.Name, Logger: a.log, Changed: a.uploads.Changed}); err != nil {
		return nil, err
	}
	a.onClose(func() { a.rec.Close() })
	server, err := deviceClient(st, cfg)
	if err != nil {
		return nil, err
	}
	a.server = server
	// Commands, certificates and logins are checked by the server's time,
	// as measured over the pinned connection to the API.
	a.clock = NewServerClock(nil, server.ServerTime, a.log)
	if a.consent, err = agentconsent.New(agentconsent.Options{Config: cfg.Consent, Fleet: st.Enrollment.Fleet, Device: st.Enrollment.Name,
		Server: server, Log: a.events, Logger: a.log}); err != nil {
		return nil, err
	}
	a.onClose(func() { a.consent.Close() })
	if a.tunnels, err = NewTunnels(TunnelOptions{State: st, Config: *cfg, Logger: a.log, Consent: a.consent, Recorder: a.rec,
		Now: a.clock.Now}); err != nil {
		return nil, err
	}
	if a.owner, err = agentowner.New(agentowner.Options{Consent: a.consent, Sessions: a.tunnels, StateDir: st.Dir, Logger: a.log}); err != nil {
		return nil, err
	}
	if a.sock, err = agentowner.ListenSocket(cfg.Owner.SocketPath(), cfg.Owner.SocketGroup); err != nil {
		return nil, err
	}
	a.onClose(func() { a.sock.Close() })
	if ui := cfg.Owner.LocalUI; ui != "" {
		if a.page, err = net.Listen("tcp", ui); err != nil {
			return nil, fmt.Errorf("the owner's page (local_ui %s): %w", ui, err)
		}
		a.onClose(func() { a.page.Close() })
	}
	return a, nil
}

// The owner's revoke ends the sessions Tunnels runs.
var _ agentowner.Sessions = (*Tunnels)(nil)

// deviceClient reaches the device's server with its own credential: for
// the support queue and the server's time.
func deviceClient(st *agentstate.State, cfg *Config) (*apiclient.Client, error) {
	enr := st.Enrollment
	server, err := apiclient.New(enr.Server, apiclient.Options{Fingerprint: enr.Fingerprint, Timeout: 15 * time.Second, NetDial: cfg.NetDial(),
		Device: &apiclient.DeviceCredentials{Fleet: enr.Fleet, Device: enr.Name, Key: st.PrivateKey}})
	if err != nil {
		return nil, fmt.Errorf("the enrollment record's server: %w", err)
	}
	return server, nil
}

func (a *Agent) onClose(f func()) { a.closers = append(a.closers, f) }

// close closes what New opened, the last first: the event log goes last,
// after everything that writes to it.
func (a *Agent) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Run runs the agent until ctx ends: the uploads, the owner's socket and
// page, and the control channel, whose verified commands open and close
// sessions. It returns only after every goroutine it started, the
// sessions' included, has ended, and everything New opened is closed; an
// Agent runs once. It returns an error only if the agent cannot start (see
// the package function Run); the owner's socket or page failing is logged.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopUploads := a.uploads.Start(ctx)
	var owner sync.WaitGroup
	owner.Go(func() {
		if err := a.owner.ServeSocket(ctx, a.sock); err != nil {
			a.log.Error("the owner's socket stopped", "err", err)
		}
	})
	// The server learns what this agent is and what its owner allows,
	// for the engineers' information and to refuse up front a session
	// whose command it could not take.
	owner.Go(func() { reportInfo(ctx, a.server, Info(&a.opts.Config), agentretry.Backoff{}, a.log) })
	status := &statusWriter{w: a.opts.Status}
	status.printf("taking the owner's commands on %s (consent: %s)", a.opts.Config.Owner.SocketPath(), a.opts.Config.Consent.ModeOrDefault())
	if a.page != nil {
		owner.Go(func() {
			if err := a.owner.ServePage(ctx, a.page); err != nil {
				a.log.Error("the owner's page stopped", "err", err)
			}
		})
		status.printf("the owner's page is at http://%s/ (porthole-agent ui prints a link that opens it)", a.page.Addr())
	}
	err := Run(ctx, RunOptions{
		State:    a.opts.State,
		Config:   a.opts.Config,
		Log:      a.events,
		Logger:   a.log,
		Status:   a.opts.Status,
		Sessions: recordSessions(a.rec, a.tunnels),
		Clock:    a.clock,
	})
	// The sessions and the owner's servers end with ctx; then what they
	// started is waited for, and what New opened is closed, the event
	// log last.
	cancel()
	a.tunnels.Wait()
	owner.Wait()
	stopUploads()
	a.close()
	return err
}
