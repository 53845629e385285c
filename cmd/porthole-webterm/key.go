//go:build js && wasm

package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"syscall/js"

	"golang.org/x/crypto/ssh"
)

// browserKey is the session key the page made with the browser's
// WebCrypto (Ed25519, not extractable): the browser keeps its private
// half, and signs with it when asked. key is the page's {publicKey, sign}.
type browserKey struct {
	pub  ssh.PublicKey
	sign js.Value // (Uint8Array) => Promise<Uint8Array>
}

var _ ssh.Signer = (*browserKey)(nil)

func newBrowserKey(key js.Value) (*browserKey, error) {
	if key.Type() != js.TypeObject || key.Get("sign").Type() != js.TypeFunction {
		return nil, errors.New("no session key was given")
	}
	raw := key.Get("publicKey")
	if !raw.InstanceOf(js.Global().Get("Uint8Array")) || raw.Get("length").Int() != ed25519.PublicKeySize {
		return nil, errors.New("the session key is not an Ed25519 key")
	}
	b := make([]byte, ed25519.PublicKeySize)
	js.CopyBytesToGo(b, raw)
	pub, err := ssh.NewPublicKey(ed25519.PublicKey(b))
	if err != nil {
		return nil, fmt.Errorf("the session key: %w", err)
	}
	return &browserKey{pub: pub, sign: key.Get("sign")}, nil
}

func (k *browserKey) PublicKey() ssh.PublicKey { return k.pub }

// Sign asks the browser to sign data. It waits for the page, so it must
// not run in a call from JavaScript (it runs in Connect's goroutine).
func (k *browserKey) Sign(_ io.Reader, data []byte) (*ssh.Signature, error) {
	arg := js.Global().Get("Uint8Array").New(len(data))
	js.CopyBytesToJS(arg, data)
	v, err := await(context.Background(), k.sign.Invoke(arg))
	if err != nil {
		return nil, fmt.Errorf("the browser did not sign with the session key: %w", err)
	}
	if !v.InstanceOf(js.Global().Get("Uint8Array")) || v.Get("length").Int() != ed25519.SignatureSize {
		return nil, errors.New("the browser's signature is not an Ed25519 signature")
	}
	sig := make([]byte, ed25519.SignatureSize)
	js.CopyBytesToGo(sig, v)
	return &ssh.Signature{Format: ssh.KeyAlgoED25519, Blob: sig}, nil
}
