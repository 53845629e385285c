package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/porthole/porthole/agent/agentretry"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/version"
)

// Info is what the agent tells its server about itself and its owner's
// config (PUT /api/v1/device/info): its version, what it understands of
// the server's commands (control.Capabilities), and the owner's consent
// mode and allow_ports exactly as the config sets them, for the engineers'
// information. The agent enforces the config itself; the report changes
// nothing it allows.
func Info(cfg *Config) apitype.DeviceInfo {
	ports := slices.Clone(cfg.AllowPorts)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	if ports == nil {
		ports = []int{}
	}
	return apitype.DeviceInfo{Version: version.Version, Capabilities: control.Capabilities(),
		Consent: string(cfg.Consent.ModeOrDefault()), AllowPorts: ports}
}

// reporter sends the report; an *apiclient.Client.
type reporter interface {
	ReportDeviceInfo(ctx context.Context, info apitype.DeviceInfo) (*apitype.Device, error)
}

// reportInfo sends info until the server takes it or ctx ends, waiting
// longer after each failure; a server that refuses it (4xx: one that
// predates the report answers 404) is not asked again.
func reportInfo(ctx context.Context, server reporter, info apitype.DeviceInfo, b agentretry.Backoff, log logger) {
	b, _ = b.WithDefaults()
	for attempt := 0; ; attempt++ {
		_, err := server.ReportDeviceInfo(ctx, info)
		if err == nil {
			log.Info("reported this agent to the server", "version", info.Version, "consent", info.Consent)
			return
		}
		var ae *apiclient.Error
		if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests &&
			ae.Status != http.StatusUnauthorized {
			log.Warn("the server did not take this agent's report", "err", err)
			return
		}
		log.Debug("reporting this agent to the server", "attempt", attempt, "err", err)
		t := time.NewTimer(b.Delay(attempt+1, rand.Float64()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// logger is what reportInfo logs to (a *slog.Logger).
type logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Debug(msg string, args ...any)
}
