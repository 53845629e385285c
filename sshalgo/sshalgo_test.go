package sshalgo

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
)

// openSSH92 is what stock OpenSSH 9.2 (Debian 12) offers by default, of
// what x/crypto/ssh implements (`ssh -G host`): its first key exchange,
// sntrup761x25519-sha512, is missing here, as it is from x/crypto.
var openSSH92 = ssh.Config{
	KeyExchanges: []string{ssh.KeyExchangeCurve25519, ssh.KeyExchangeECDHP256, ssh.KeyExchangeECDHP384,
		ssh.KeyExchangeECDHP521, ssh.KeyExchangeDHGEXSHA256, ssh.KeyExchangeDH16SHA512, ssh.KeyExchangeDH14SHA256},
	Ciphers: []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR,
		ssh.CipherAES128GCM, ssh.CipherAES256GCM},
	MACs: []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM, ssh.HMACSHA256, ssh.HMACSHA512, ssh.HMACSHA1},
}

// negotiate runs a real x/crypto handshake between client and server over
// loopback TCP and returns what the client's side says was agreed.
func negotiate(t *testing.T, client, server ssh.Config) ssh.NegotiatedAlgorithms {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sc := &ssh.ServerConfig{Config: server, NoClientAuth: true}
	sc.AddHostKey(hostKey)
	cc := &ssh.ClientConfig{Config: client, User: "u", HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey())}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		_, _, _, err = ssh.NewServerConn(nc, sc)
		done <- err
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn, _, _, err := ssh.NewClientConn(nc, "dev", cc)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	algs := conn.(ssh.AlgorithmsConnMetadata).Algorithms()
	conn.Close()
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return algs
}

// TestNegotiation: what each client gets from a device, with and without
// AES hardware on either side.
func TestNegotiation(t *testing.T) {
	porthole := func(aes bool) ssh.Config {
		return ssh.Config{KeyExchanges: KeyExchanges(), Ciphers: clientCiphers(aes)}
	}
	device := func(aes bool) ssh.Config {
		return ssh.Config{KeyExchanges: KeyExchanges(), Ciphers: serverCiphers(aes)}
	}
	for _, tt := range []struct {
		name           string
		client, server ssh.Config
		kex, cipher    string
	}{
		{"porthole to device with AES", porthole(true), device(true), ssh.KeyExchangeMLKEM768X25519, ssh.CipherAES128GCM},
		{"porthole without AES to device with AES", porthole(false), device(true), ssh.KeyExchangeMLKEM768X25519, ssh.CipherAES128GCM},
		{"porthole to device without AES", porthole(true), device(false), ssh.KeyExchangeMLKEM768X25519, ssh.CipherChaCha20Poly1305},
		{"OpenSSH 9.2 to device with AES", openSSH92, device(true), ssh.KeyExchangeCurve25519, ssh.CipherAES128GCM},
		{"OpenSSH 9.2 to device without AES", openSSH92, device(false), ssh.KeyExchangeCurve25519, ssh.CipherChaCha20Poly1305},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := negotiate(t, tt.client, tt.server)
			if got.KeyExchange != tt.kex {
				t.Errorf("key exchange = %s; want %s", got.KeyExchange, tt.kex)
			}
			for _, d := range []ssh.DirectionAlgorithms{got.Read, got.Write} {
				if d.Cipher != tt.cipher || d.MAC != "" {
					t.Errorf("cipher = %s, MAC %q; want %s, none", d.Cipher, d.MAC, tt.cipher)
				}
			}
		})
	}
}

// TestSupported: every algorithm named is one x/crypto/ssh implements, so
// none is silently dropped, and the server's list is what this machine
// runs fastest.
func TestSupported(t *testing.T) {
	sup := ssh.SupportedAlgorithms()
	for _, cfg := range []ssh.Config{Server(), Client()} {
		for _, k := range cfg.KeyExchanges {
			if !slices.Contains(sup.KeyExchanges, k) {
				t.Errorf("key exchange %s is not supported by x/crypto/ssh", k)
			}
		}
		for _, c := range cfg.Ciphers {
			if !slices.Contains(sup.Ciphers, c) {
				t.Errorf("cipher %s is not supported by x/crypto/ssh", c)
			}
		}
	}
	want := chacha
	if AESHardware() {
		want = gcm
	}
	if got := Server().Ciphers; !slices.Equal(got, want) {
		t.Errorf("Server().Ciphers = %v; want %v (AES hardware: %v)", got, want, AESHardware())
	}
}

func TestOffersLoginSession(t *testing.T) {
	for v, want := range map[string]bool{
		"SSH-2.0-Porthole login-session":          true,
		"SSH-2.0-PortholeAgent x login-session y": true,
		"SSH-2.0-Porthole":                        false,
		"SSH-2.0-login-session":                   false, // the software name, not a comment
		"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10": false,
		"SSH-2.0-Porthole login-sessions":         false,
	} {
		if got := OffersLoginSession([]byte(v)); got != want {
			t.Errorf("OffersLoginSession(%q) = %v; want %v", v, got, want)
		}
	}
}
