package agentstate

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/atomicfile"
)

// Enrollment is what the device learned when it enrolled, kept in
// enrollment.json. Keys are in authorized_keys format.
type Enrollment struct {
	Server         string    `json:"server"`                // the API's base URL
	Fingerprint    string    `json:"fingerprint,omitempty"` // pin used to reach it; empty: system roots
	Fleet          string    `json:"fleet"`
	DeviceID       string    `json:"device_id"`
	Name           string    `json:"name"`
	ControlKey     string    `json:"control_key"`     // signs the commands the device obeys
	UserCA         string    `json:"user_ca"`         // signs engineers' session certificates
	HostCA         string    `json:"host_ca"`         // signed this device's host certificate
	TLSFingerprint string    `json:"tls_fingerprint"` // the server's own certificate, as it reported it
	BrokerURL      string    `json:"broker_url"`
	RelayAddr      string    `json:"relay_addr"`
	EnrolledAt     time.Time `json:"enrolled_at"`
}

// State is an enrolled device's state directory, loaded and checked.
type State struct {
	Dir        string
	Enrollment Enrollment
	Key        ssh.Signer         // the device key
	PrivateKey ed25519.PrivateKey // the same key, for signing the MQTT password
	HostCert   *ssh.Certificate   // its host certificate
}

// ErrNotEnrolled means the state directory holds no enrollment record.
var ErrNotEnrolled = errors.New("agent: this device is not enrolled")

// Load reads and checks an enrolled device's state directory: its
// permissions, the enrollment record, the device key and the host
// certificate, which must be for that key and signed by the recorded host
// CA.
func Load(dir string) (*State, error) {
	if err := Check(dir); err != nil {
		return nil, err
	}
	enr, err := ReadEnrollment(dir)
	if err != nil {
		return nil, err
	}
	priv, err := LoadDeviceKey(filepath.Join(dir, DeviceKeyFile))
	if err != nil {
		return nil, err
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("using the device key: %w", err)
	}
	certPath := filepath.Join(dir, HostCertFile)
	data, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("reading the host certificate: %w", err)
	}
	cert, err := CheckHostCert(string(data), key.PublicKey(), enr.HostCA, enr.Fleet, enr.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; remove %s and enroll again", certPath, err, dir)
	}
	return &State{Dir: dir, Enrollment: *enr, Key: key, PrivateKey: priv, HostCert: cert}, nil
}

// ReadEnrollment reads dir's enrollment record; ErrNotEnrolled if there is
// none.
func ReadEnrollment(dir string) (*Enrollment, error) {
	path := filepath.Join(dir, EnrollmentFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s); run porthole-agent enroll first", ErrNotEnrolled, path)
	} else if err != nil {
		return nil, fmt.Errorf("reading the enrollment record: %w", err)
	}
	var enr Enrollment
	if err := json.Unmarshal(data, &enr); err != nil {
		return nil, fmt.Errorf("the enrollment record %s is damaged (%w); remove %s and enroll again", path, err, dir)
	}
	return &enr, nil
}

// WriteEnrollment saves the host certificate, then the enrollment record,
// each atomically: the record comes last because its presence means the
// device is enrolled.
func WriteEnrollment(dir string, enr *Enrollment, hostCert string) error {
	if err := atomicfile.WriteFile(filepath.Join(dir, HostCertFile), []byte(hostCert+"\n"), 0o644); err != nil {
		return err
	}
	data, err := json.MarshalIndent(enr, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the enrollment record: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, EnrollmentFile), append(data, '\n'), 0o644)
}
