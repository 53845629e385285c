// Package ca makes, stores and uses Porthole's keys and certificate
// authorities: the control key that signs commands to devices, the user CA
// that signs engineers' session certificates, the host CA that signs device
// and relay host keys, the relay's host key and the API's TLS certificate.
//
// The three signing keys (control key, user CA, host CA) are held by the
// nodes with the api role only: Generate makes them in an API node's data
// dir, which Load reads. A node without the api role (a relay or broker
// node) gets a data dir of its own from WriteNodeDir, run on an API node:
// the signing keys' public halves, the TLS certificate every node shows, the
// deployment's node secret, and a relay host key of its own with the host
// certificate the host CA issued for it. LoadNode reads that, and refuses a
// data dir that holds a signing key: a compromised relay node then has
// nothing to sign open commands or engineers' certificates with.
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
	// NodeSecretFile is the secret the nodes of a deployment share with
	// each other (and nothing else): the password they log in to the
	// broker node's embedded broker with.
	NodeSecretFile = "node_secret"
)

// The files of a node's data dir (WriteNodeDir) that an API node's lacks:
// the signing keys' public halves and the relay's host certificate.
const (
	ControlPubFile    = ControlKeyFile + ".pub"
	UserCAPubFile     = UserCAFile + ".pub"
	HostCAPubFile     = HostCAFile + ".pub"
	RelayHostCertFile = RelayHostKeyFile + "-cert.pub"
)

// SigningKeyFiles are the private keys only API nodes hold.
var SigningKeyFiles = []string{ControlKeyFile, UserCAFile, HostCAFile}

// Keys are the server's keys, loaded from the data dir: all of them on an
// API node (Load); on any other node (LoadNode) the signing keys are nil,
// their public halves set, and RelayHostCert is the relay's host
// certificate an API node issued.
type Keys struct {
	Control   ed25519.PrivateKey // signs control commands to devices; nil off API nodes
	UserCA    ssh.Signer         // signs engineers' session certificates; nil off API nodes
	HostCA    ssh.Signer         // signs device and relay host keys; nil off API nodes
	RelayHost ssh.Signer         // the relay's host key
	TLS       tls.Certificate    // the API's certificate

	// The signing keys' public halves, always set.
	ControlPub ed25519.PublicKey
	UserCAPub  ssh.PublicKey
	HostCAPub  ssh.PublicKey
	// RelayHostCert certifies RelayHost. Nil on an API node, which
	// certifies its relay's key itself as it starts (SignRelayHostCert).
	RelayHostCert *ssh.Certificate
	// NodeSecret is what the nodes of the deployment share with each
	// other (NodeSecretFile), as one line of text.
	NodeSecret string
}

// CanSign reports whether k holds the signing keys (an API node's).
func (k *Keys) CanSign() bool { return k.Control != nil && k.UserCA != nil && k.HostCA != nil }

// ControlPublicKey is the control key's public half as an authorized_keys
// line (without the newline), as devices receive it at enrollment.
func (k *Keys) ControlPublicKey() string {
	pub, err := ssh.NewPublicKey(k.ControlPub)
	if err != nil {
		// Cannot happen: an ed25519 public key always converts.
		panic("ca: control key: " + err.Error())
	}
	return authorizedKey(pub)
}

// UserCAPublicKey is the user CA's public key as an authorized_keys line.
func (k *Keys) UserCAPublicKey() string { return authorizedKey(k.UserCAPub) }

// HostCAPublicKey is the host CA's public key as an authorized_keys line.
func (k *Keys) HostCAPublicKey() string { return authorizedKey(k.HostCAPub) }

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
