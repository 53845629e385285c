package agentssh

import (
	"regexp"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/sshalgo"
)

// wantCipher is the cipher the device's server gets every client to use
// on this machine: AES-GCM with AES instructions, ChaCha20-Poly1305
// without.
func wantCipher() string {
	if sshalgo.AESHardware() {
		return ssh.CipherAES128GCM
	}
	return ssh.CipherChaCha20Poly1305
}

// TestAlgorithms: porthole's own client and the device agree on the
// hybrid post-quantum key exchange, and on the cipher this machine runs
// fastest, as both ends see it.
func TestAlgorithms(t *testing.T) {
	e := newEnv(t)
	logs := &logRecords{}
	c, _ := e.login(t, e.server(t, func(c *Config) { c.Logger = logs.logger() }))
	got := c.Conn.(ssh.AlgorithmsConnMetadata).Algorithms()
	if got.KeyExchange != ssh.KeyExchangeMLKEM768X25519 {
		t.Errorf("key exchange = %s; want %s", got.KeyExchange, ssh.KeyExchangeMLKEM768X25519)
	}
	if got.Read.Cipher != wantCipher() || got.Write.Cipher != wantCipher() {
		t.Errorf("ciphers = %s in, %s out; want %s", got.Read.Cipher, got.Write.Cipher, wantCipher())
	}
	// The device logs what it agreed on.
	var rec map[string]string
	testwait.For(t, 10*time.Second, "the login's log line", func() bool { rec = logs.find("engineer connected"); return rec != nil })
	if rec["kex"] != ssh.KeyExchangeMLKEM768X25519 || rec["cipher_in"] != wantCipher() || rec["cipher_out"] != wantCipher() {
		t.Errorf("the device logged %v; want kex %s, ciphers %s", rec, ssh.KeyExchangeMLKEM768X25519, wantCipher())
	}
}

// TestAlgorithmsRefused: the device offers no cipher but its fastest
// family, so a client that asks only for another gets nothing.
func TestAlgorithmsRefused(t *testing.T) {
	e := newEnv(t)
	cc := e.clientConfig(e.certAuth(t))
	cc.Ciphers = []string{ssh.CipherAES128CTR, ssh.CipherAES256CTR}
	if sshalgo.AESHardware() {
		cc.Ciphers = append(cc.Ciphers, ssh.CipherChaCha20Poly1305)
	} else {
		cc.Ciphers = append(cc.Ciphers, ssh.CipherAES128GCM, ssh.CipherAES256GCM)
	}
	if _, _, err := e.dialConfig(t, e.server(t, nil), testSession, cc); err == nil {
		t.Errorf("a client offering only %v got in", cc.Ciphers)
	}
}

// TestOpenSSHAlgorithms: what stock OpenSSH (9.2 on Debian 12) agrees on
// with the device, as its -v output and the device's log say: X25519
// (curve25519-sha256, since 9.2 has no ML-KEM and x/crypto no sntrup761)
// and AES-GCM, not the chacha20-poly1305 it would pick first if the
// device offered it.
func TestOpenSSHAlgorithms(t *testing.T) {
	needOpenSSH(t)
	e := newEnv(t)
	logs := &logRecords{}
	port := serveTCP(t, e.server(t, func(c *Config) { c.Logger = logs.logger() }), testSession)
	_, opts := e.openSSH(t, port)
	out, errOut, err := runOpenSSH(t, nil, "/usr/bin/ssh", append(append([]string{"-v", "-o", "BatchMode=yes"}, opts...), "127.0.0.1", "echo ok")...)
	if err != nil || out != "ok\n" {
		t.Fatalf("ssh: %q, %v\n%s", out, err, errOut)
	}
	find := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(errOut)
		if m == nil {
			t.Fatalf("ssh -v said nothing matching %q:\n%s", re, errOut)
		}
		return m[1]
	}
	if kex := find(`kex: algorithm: (\S+)`); kex != ssh.KeyExchangeCurve25519 {
		t.Errorf("ssh agreed on key exchange %s; want %s", kex, ssh.KeyExchangeCurve25519)
	}
	if hk := find(`kex: host key algorithm: (\S+)`); hk != ssh.CertAlgoED25519v01 {
		t.Errorf("ssh agreed on host key algorithm %s; want %s", hk, ssh.CertAlgoED25519v01)
	}
	for _, dir := range []string{"client->server", "server->client"} {
		if c := find(`kex: ` + dir + ` cipher: (\S+) MAC: <implicit>`); c != wantCipher() {
			t.Errorf("ssh agreed on %s cipher %s; want %s", dir, c, wantCipher())
		}
	}
	var rec map[string]string
	testwait.For(t, 10*time.Second, "the login's log line", func() bool { rec = logs.find("engineer connected"); return rec != nil })
	if rec["kex"] != ssh.KeyExchangeCurve25519 || rec["cipher_in"] != wantCipher() {
		t.Errorf("the device logged %v; want kex %s, cipher %s", rec, ssh.KeyExchangeCurve25519, wantCipher())
	}
}
