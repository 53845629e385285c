package keyfile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestRoundTrip(t *testing.T) {
	priv, data, err := NewEd25519("test key")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEd25519(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(priv) {
		t.Error("ReadEd25519 read another key")
	}
	_, data2, _ := NewEd25519("test key")
	if string(data) == string(data2) {
		t.Error("two new keys are equal")
	}
}

func TestReadPrivateRefusesLoosePermissions(t *testing.T) {
	_, data, err := NewEd25519("")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602, 0o660, 0o644, 0o777} {
		path := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadEd25519(path); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("ReadEd25519 of a %v key = %v; want an error saying chmod 600 %s", mode, err, path)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		path := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(path, data, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadEd25519(path); err != nil {
			t.Errorf("ReadEd25519 of a %v key: %v", mode, err)
		}
	}
}

func TestReadEd25519Refuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadEd25519(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing key: %v; want os.ErrNotExist", err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(ec, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, data, errHas string
	}{
		{"ecdsa", string(pem.EncodeToMemory(block)), "ed25519"},
		{"garbage", "not a key", "not an OpenSSH private key"},
	} {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadEd25519(path); err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("%s: %v; want an error mentioning %q", tt.name, err, tt.errHas)
		}
	}
}

func TestCheckDir(t *testing.T) {
	t.Run("private", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o700, 0o750, 0o755} {
			dir := t.TempDir()
			os.Chmod(dir, mode)
			if err := CheckDir(dir); err != nil {
				t.Errorf("CheckDir of a %v dir: %v", mode, err)
			}
		}
	})
	t.Run("writable by others", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o770, 0o702, 0o777, 0o1777} {
			dir := t.TempDir()
			os.Chmod(dir, mode)
			if err := CheckDir(dir); err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
				t.Errorf("CheckDir of a %v dir = %v; want an error saying chmod 700 %s", mode, err, dir)
			}
		}
	})
	t.Run("another user's", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a directory away")
		}
		dir := t.TempDir()
		if err := os.Chown(dir, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if err := CheckDir(dir); err == nil || !strings.Contains(err.Error(), "belongs to user id 4242") {
			t.Errorf("CheckDir of another user's dir = %v; want an error naming the owner", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if err := CheckDir(filepath.Join(t.TempDir(), "x")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("CheckDir of a missing dir = %v; want os.ErrNotExist", err)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f")
		os.WriteFile(path, nil, 0o600)
		if err := CheckDir(path); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("CheckDir of a file = %v; want not a directory", err)
		}
	})
}
