//go:build unix

package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// listenAgent takes path's lock (telling waiting() once if another proxy
// holds it) and listens on the Unix socket path, 0600 in a 0700
// directory. release removes the socket and frees the lock.
func listenAgent(ctx context.Context, path string, waiting func()) (ln net.Listener, release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("making the agent socket's directory: %w", err)
	}
	unlock, err := lockFile(ctx, path+".lock", waiting)
	if err != nil {
		return nil, nil, err
	}
	_ = os.Remove(path) // left by a proxy that was killed
	ln, err = net.Listen("unix", path)
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("serving the session's certificate to ssh on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		unlock()
		return nil, nil, fmt.Errorf("serving the session's certificate to ssh on %s: %w", path, err)
	}
	return ln, func() {
		_ = os.Remove(path) // closing the listener removes it too, unless it was replaced
		unlock()
	}, nil
}

// lockFile takes an exclusive lock on path (created 0600), waiting while
// another process holds it and telling waiting() once that it does. The
// lock goes with the process, so a killed proxy never leaves it taken.
func lockFile(ctx context.Context, path string, waiting func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !told {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}
