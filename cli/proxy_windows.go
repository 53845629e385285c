package cli

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/Microsoft/go-winio"
)

// listenAgent listens on the named pipe path, which only this user may
// open (agentPipeSDDL). The pipe's name is its own lock: its first
// instance is created exclusively, and the name lives until the listener
// and every connection to it are closed, so a second proxy for the same
// host tries again (telling waiting() once) until the first proxy's ssh
// has logged in and hung up. Nothing is left to release.
func listenAgent(ctx context.Context, path string, waiting func()) (ln net.Listener, release func(), err error) {
	sid, err := currentUserSID()
	if err != nil {
		return nil, nil, err
	}
	cfg := &winio.PipeConfig{SecurityDescriptor: agentPipeSDDL(sid)}
	told := false
	for {
		ln, err := winio.ListenPipe(path, cfg)
		if err == nil {
			return ln, func() {}, nil
		}
		if !pipeInUse(err) {
			return nil, nil, fmt.Errorf("serving the session's certificate to ssh on %s: %w", path, err)
		}
		if !told {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}
