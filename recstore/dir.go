package recstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/porthole/porthole/internal/atomicfile"
)

// Dir is a Store in a local directory: Root/<fleet>/<session>/<name>, files
// 0600 and directories 0700. Its locks are this process's: several server
// processes must not share one Dir.
type Dir struct {
	Root string

	locks KeyLocks
}

var _ Store = (*Dir)(nil)

// Lock implements Store.
func (d *Dir) Lock(ctx context.Context, key Key) (func(), error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	unlock, err := d.locks.Lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("recstore: waiting for the upload lock of session %s: %w", key.Session, err)
	}
	return unlock, nil
}

// path is the file's path, or why there is none.
func (d *Dir) path(key Key, name string) (string, error) {
	if err := Check(key, name); err != nil {
		return "", err
	}
	return filepath.Join(d.Root, key.Fleet, key.Session, name), nil
}

// Size implements Store.
func (d *Dir) Size(_ context.Context, key Key, name string) (int64, error) {
	p, err := d.path(key, name)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// ReadAt implements Store.
func (d *Dir) ReadAt(_ context.Context, key Key, name string, buf []byte, offset int64) error {
	p, err := d.path(key, name)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, offset); err != nil {
		return fmt.Errorf("reading back %s: %w", name, err)
	}
	return nil
}

// Append implements Store: the chunk is written and synced, or cut off
// again, so that the file never holds a torn chunk.
func (d *Dir) Append(_ context.Context, key Key, name string, offset int64, data []byte) error {
	if _, err := d.path(key, name); err != nil || len(data) == 0 {
		return err
	}
	p, err := d.mkdir(key, name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", name, err)
	}
	_, err = f.WriteAt(data, offset)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Truncate(offset)
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return f.Close()
}

// Replace implements Store.
func (d *Dir) Replace(_ context.Context, key Key, name string, data []byte) error {
	p, err := d.mkdir(key, name)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, data, 0o600)
}

// mkdir makes the session's directory and returns the file's path.
func (d *Dir) mkdir(key Key, name string) (string, error) {
	p, err := d.path(key, name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("making the recording's directory: %w", err)
	}
	return p, nil
}

// Open implements Store.
func (d *Dir) Open(_ context.Context, key Key, name string) (File, error) {
	p, err := d.path(key, name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, name)
	} else if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &dirFile{File: f, mod: fi.ModTime()}, nil
}

type dirFile struct {
	*os.File
	mod time.Time
}

func (f *dirFile) ModTime() time.Time { return f.mod }

// Delete implements Store.
func (d *Dir) Delete(_ context.Context, key Key) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(d.Root, key.Fleet, key.Session))
}
