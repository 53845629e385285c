// Package sshalgo chooses the key exchanges and ciphers of Porthole's
// end-to-end SSH (the engineer's client to the device's embedded server),
// the same way at both ends.
//
// # Key exchange
//
// mlkem768x25519-sha256 first (ML-KEM-768 with X25519, post-quantum and
// classical at once), then curve25519-sha256 for clients without it:
// stock OpenSSH before 9.9, such as Debian 12's 9.2, which offers
// sntrup761x25519-sha512 as its hybrid, which x/crypto/ssh does not
// implement. With Porthole's own client both ends agree on ML-KEM; with
// OpenSSH 9.2 they agree on curve25519-sha256.
//
// # Ciphers
//
// SSH clients pick the first of their own ciphers that the server offers
// (RFC 4253 7.1), and stock OpenSSH lists chacha20-poly1305@openssh.com,
// then aes128-ctr, aes192-ctr, aes256-ctr, and AES-GCM last. So the device
// offers one family only, the one its processor runs fastest:
//
//   - with AES and carry-less multiply instructions (AES-NI and PCLMULQDQ on
//     amd64, the ARMv8 crypto extension on arm64): aes128-gcm@openssh.com
//     and aes256-gcm@openssh.com. x/crypto/ssh implements
//     chacha20-poly1305@openssh.com without a fused AEAD, measured at about
//     9 CPU-s/GiB for both ends of a connection against 3.6–4.2 for
//     aes128-gcm, and CTR needs a separate MAC on top.
//   - without them (armv7, and arm64 boards without the crypto extension
//     such as the Raspberry Pi 3 and 4): chacha20-poly1305@openssh.com,
//     since AES and GHASH in software are slower still, and not constant
//     time. This is the choice Go's crypto/tls makes too.
//
// Every client of note speaks both families (OpenSSH since 6.5, PuTTY,
// Dropbear, x/crypto). Porthole's client lists both, its processor's
// faster family first; against a device it gets the device's family, which
// is what the device, usually the weaker end, runs best. MACs do not
// matter: both families are AEADs, for which none is negotiated.
package sshalgo

import (
	"runtime"
	"slices"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"
)

var (
	gcm    = []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM}
	chacha = []string{ssh.CipherChaCha20Poly1305}
)

// aesHardware reports whether AES-GCM runs in hardware here, as
// crypto/aes implements it.
var aesHardware = hasAESGCMHardware()

func hasAESGCMHardware() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESCTR && cpu.S390X.HasGHASH
	case "ppc64", "ppc64le":
		return true
	}
	return false
}

// AESHardware reports whether this processor runs AES-GCM in hardware, and
// so which cipher family Server offers.
func AESHardware() bool { return aesHardware }

// KeyExchanges are the key exchanges both ends allow, in order of
// preference.
func KeyExchanges() []string {
	return []string{ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519}
}

// Server is the algorithm part of the device's ssh.ServerConfig.
func Server() ssh.Config {
	return ssh.Config{KeyExchanges: KeyExchanges(), Ciphers: serverCiphers(aesHardware)}
}

// Client is the algorithm part of Porthole's own ssh.ClientConfig for
// reaching a device.
func Client() ssh.Config {
	return ssh.Config{KeyExchanges: KeyExchanges(), Ciphers: clientCiphers(aesHardware)}
}

func serverCiphers(aes bool) []string {
	if aes {
		return slices.Clone(gcm)
	}
	return slices.Clone(chacha)
}

func clientCiphers(aes bool) []string {
	if aes {
		return slices.Concat(gcm, chacha)
	}
	return slices.Concat(chacha, gcm)
}
