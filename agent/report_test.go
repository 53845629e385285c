package agent

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentretry"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/version"
)

// TestInfo: the report says the owner's config exactly (the default
// consent, manual, when it sets none), this build's version and every
// capability it has.
func TestInfo(t *testing.T) {
	got := Info(&Config{})
	if got.Consent != "manual" || !slices.Equal(got.AllowPorts, []int{}) || got.Version != version.Version ||
		!slices.Equal(got.Capabilities, control.Capabilities()) {
		t.Errorf("Info of the defaults = %+v", got)
	}
	got = Info(&Config{Consent: agentconsent.Config{Mode: agentconsent.Auto}, AllowPorts: []int{8080, 22, 8080}})
	if got.Consent != "auto" || !slices.Equal(got.AllowPorts, []int{22, 8080}) {
		t.Errorf("Info = %+v; want auto and 22, 8080", got)
	}
}

type fakeReporter struct {
	errs  []error // answered in turn; then success
	calls atomic.Int32
}

func (f *fakeReporter) ReportDeviceInfo(context.Context, apitype.DeviceInfo) (*apitype.Device, error) {
	n := int(f.calls.Add(1)) - 1
	if n < len(f.errs) {
		return nil, f.errs[n]
	}
	return &apitype.Device{}, nil
}

// TestReportInfoRetries: a server that cannot be reached, or fails, is
// asked again; one that refuses the report (a server that predates it
// answers 404) is not.
func TestReportInfoRetries(t *testing.T) {
	fast := agentretry.Backoff{First: time.Millisecond, Max: 2 * time.Millisecond}
	f := &fakeReporter{errs: []error{errors.New("connection refused"), &apiclient.Error{Status: 503}, &apiclient.Error{Status: 401}}}
	reportInfo(t.Context(), f, Info(&Config{}), fast, slog.New(slog.DiscardHandler))
	if n := f.calls.Load(); n != 4 {
		t.Errorf("%d calls; want 4 (three failures, then the report)", n)
	}
	f = &fakeReporter{errs: []error{&apiclient.Error{Status: 404}}}
	reportInfo(t.Context(), f, Info(&Config{}), fast, slog.New(slog.DiscardHandler))
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d calls to a server that refused the report; want 1", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f = &fakeReporter{errs: []error{errors.New("down"), errors.New("down")}}
	reportInfo(ctx, f, Info(&Config{}), fast, slog.New(slog.DiscardHandler))
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d calls after the agent stopped; want 1", n)
	}
}
