// Package keyfile makes, reads and writes private key files (ed25519 in
// OpenSSH PEM) and refuses ones that users other than the owner can open.
// Both the server's keys (package ca) and the device's key (package agent)
// live in such files.
package keyfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/ssh"
)

// NewEd25519 makes an ed25519 key and returns it with its OpenSSH PEM
// encoding, ready to be written with mode 0600.
func NewEd25519(comment string) (ed25519.PrivateKey, []byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("making an ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the ed25519 key: %w", err)
	}
	return priv, pem.EncodeToMemory(block), nil
}

// ReadPrivate reads a secret file after checking that only its owner can
// read or write it. Its errors name the file and, for loose permissions,
// the chmod that fixes them; a missing file matches os.ErrNotExist.
func ReadPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checking %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is open to other users (mode %v), but a private key must be private; run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}

// ReadEd25519 reads an OpenSSH ed25519 private key with ReadPrivate's
// checks.
func ReadEd25519(path string) (ed25519.PrivateKey, error) {
	data, err := ReadPrivate(path)
	if err != nil {
		return nil, err
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OpenSSH private key: %w", path, err)
	}
	switch key := raw.(type) {
	case *ed25519.PrivateKey:
		return *key, nil
	case ed25519.PrivateKey:
		return key, nil
	}
	return nil, fmt.Errorf("%s holds a %T key; Porthole's keys are ed25519", path, raw)
}
