package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// WANResult is time to shell and echo when every link has a round trip of
// RTT.
type WANResult struct {
	RTT   time.Duration
	Shell []ShellResult
	Echo  []EchoResult
}

// wan measures time to shell and echo again on a second deployment whose
// every link is delayed: the CLI and the agent reach the API, the broker
// and the relay, and ssh reaches sshd, through delayProxies adding rtt to
// each round trip. Loopback makes round trips free, which flatters a
// design that needs more of them; this puts a price on each.
//
// The model: engineer and device are each one link of rtt away from the
// server, and the engineer is one link of rtt away from the device for
// OpenSSH direct, which Porthole's devices behind NAT do not offer.
func wan(ctx context.Context, b *benchRun, rtt time.Duration, runs int) (*WANResult, error) {
	b.log.Info("WAN: a second deployment with delayed links", "rtt", rtt)
	dir := filepath.Join(b.dir, "wan")
	p, err := startPorthole(ctx, b.log, dir, b.porthole.bins, rtt/2)
	if err != nil {
		return nil, fmt.Errorf("the WAN deployment: %w", err)
	}
	defer p.close()
	o, err := b.openssh.delayed(rtt / 2)
	if err != nil {
		return nil, err
	}
	defer o.close()
	w := &benchRun{log: b.log, dir: dir, porthole: p, openssh: o}
	r := &WANResult{RTT: rtt}
	if r.Shell, err = timeToShell(ctx, w, runs); err != nil {
		return nil, err
	}
	if r.Echo, err = echo(ctx, w, 5*runs); err != nil {
		return nil, err
	}
	return r, nil
}
