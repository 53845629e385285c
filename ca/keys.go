// Package ca makes, stores and uses Porthole's keys and certificate
// authorities: the control key that signs commands to devices, the user CA
// that signs engineers' session certificates, the host CA that signs device
// and relay host keys, the relay's host key and the API's TLS certificate.
package ca

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Names of the files Generate writes and Load reads in the data dir.
const (
	ControlKeyFile   = "control_key"
	UserCAFile       = "user_ca"
	HostCAFile       = "host_ca"
	RelayHostKeyFile = "relay_host_key"
	TLSCertFile      = "tls.crt"
	TLSKeyFile       = "tls.key"
)

// Keys are the server's private keys, loaded from the data dir.
type Keys struct {
	Control   ed25519.PrivateKey // signs control commands to devices
	UserCA    ssh.Signer         // signs engineers' session certificates
	HostCA    ssh.Signer         // signs device and relay host keys
	RelayHost ssh.Signer         // the relay's host key
	TLS       tls.Certificate    // the API's certificate
}

// ControlPublicKey is the control key's public half as an authorized_keys
// line (without the newline), as devices receive it at enrollment.
func (k *Keys) ControlPublicKey() string {
	pub, err := ssh.NewPublicKey(k.Control.Public())
	if err != nil {
		// Cannot happen: an ed25519 public key always converts.
		panic("ca: control key: " + err.Error())
	}
	return authorizedKey(pub)
}

// UserCAPublicKey is the user CA's public key as an authorized_keys line.
func (k *Keys) UserCAPublicKey() string { return authorizedKey(k.UserCA.PublicKey()) }

// HostCAPublicKey is the host CA's public key as an authorized_keys line.
func (k *Keys) HostCAPublicKey() string { return authorizedKey(k.HostCA.PublicKey()) }

// TLSFingerprint is the pin of the API's certificate: "sha256:" and the hex
// SHA-256 of the leaf's DER, the form apiclient.Fingerprint prints and
// clients accept with --fingerprint.
func (k *Keys) TLSFingerprint() string {
	if len(k.TLS.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(k.TLS.Certificate[0])
	return "sha256:" + hex.EncodeToString(sum[:])
}

func authorizedKey(pub ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
}
