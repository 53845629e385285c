package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The listeners of deploy/mosquitto's mosquitto.conf, and the directory
// its files are expected in.
const (
	mosqDeviceListener = "1883"
	mosqServerListener = "1884"
	mosqShippedDir     = "/etc/mosquitto/porthole/"
	// mosqServerUser is the user name server nodes log in as (the ACL's
	// "user portholed").
	mosqServerUser = "portholed"
)

// mosqStartTimeout bounds the wait for a started Mosquitto to accept
// connections on both listeners.
const mosqStartTimeout = 30 * time.Second

// mosquitto is a Mosquitto of the run's own, run from the configuration
// deploy/mosquitto ships with its ports and paths rewritten, as the
// brokerclient tests run it (internal/testmosquitto, which only tests may
// import): the devices' listener with TLS (the certificate and key of the
// deployment's portholed, which the simulated devices pin), the server
// nodes' listener plain, both on loopback.
type mosquitto struct {
	dir, conf, bin         string
	devicePort, serverPort int
	proc                   *proc
}

// mosqConfig is what newMosquitto writes.
type mosqConfig struct {
	// CertFile and KeyFile are the devices' listener's TLS certificate
	// and key (PEM).
	CertFile, KeyFile string
	// Persistence turns on Mosquitto's database in dir (persistence true,
	// as Debian's /etc/mosquitto/mosquitto.conf has it), saved when
	// Mosquitto stops cleanly. Off: a restart forgets every session and
	// retained message.
	Persistence bool
}

// newMosquitto writes the shipped configuration and ACL into dir with free
// ports, the devices' and the server nodes' password files (user name to
// password, hashed by mosquitto_passwd -U), and returns the broker, not
// started yet, with the time mosquitto_passwd took to hash the devices'
// passwords.
func newMosquitto(ctx context.Context, dir string, c mosqConfig, devices, servers map[string]string) (*mosquitto, time.Duration, error) {
	bin, err := findTool("mosquitto", "/usr/sbin/mosquitto")
	if err != nil {
		return nil, 0, err
	}
	passwd, err := findTool("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
	if err != nil {
		return nil, 0, err
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, 0, err
	}
	shipped, err := os.ReadFile(filepath.Join(root, "deploy", "mosquitto", "mosquitto.conf"))
	if err != nil {
		return nil, 0, err
	}
	acl, err := os.ReadFile(filepath.Join(root, "deploy", "mosquitto", "acl"))
	if err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	m := &mosquitto{dir: dir, bin: bin, conf: filepath.Join(dir, "mosquitto.conf")}
	if m.devicePort, err = freePort(); err != nil {
		return nil, 0, err
	}
	if m.serverPort, err = freePort(); err != nil {
		return nil, 0, err
	}
	me, err := user.Current()
	if err != nil {
		return nil, 0, err
	}
	conf, err := mosquittoConf(string(shipped), dir, m.devicePort, m.serverPort, c, me.Username)
	if err != nil {
		return nil, 0, err
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		return nil, 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "acl"), acl, 0o600); err != nil {
		return nil, 0, err
	}
	if _, err := writePasswd(ctx, passwd, filepath.Join(dir, "servers.passwd"), servers); err != nil {
		return nil, 0, err
	}
	took, err := writePasswd(ctx, passwd, filepath.Join(dir, "devices.passwd"), devices)
	if err != nil {
		return nil, 0, err
	}
	return m, took, nil
}

// findTool finds a Mosquitto program on PATH or at its Debian path.
func findTool(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", fmt.Errorf("%s is not installed (apt-get install mosquitto mosquitto-clients)", name)
}

var mosqListenerLine = regexp.MustCompile(`(?m)^listener (\d+)( \S+)?$`)

// mosquittoConf rewrites the shipped mosquitto.conf for a run: its files
// in dir, the devices' listener on devicePort with c's certificate, the
// server nodes' on serverPort, both on 127.0.0.1, Mosquitto running as
// username and logging (its default kinds of messages, as a packaged
// Mosquitto does) to dir/mosquitto.log.
func mosquittoConf(shipped, dir string, devicePort, serverPort int, c mosqConfig, username string) (string, error) {
	seen := map[string]bool{}
	var bad []string
	conf := mosqListenerLine.ReplaceAllStringFunc(shipped, func(line string) string {
		port := mosqListenerLine.FindStringSubmatch(line)[1]
		seen[port] = true
		switch port {
		case mosqDeviceListener:
			return fmt.Sprintf("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s", devicePort, c.CertFile, c.KeyFile)
		case mosqServerListener:
			return fmt.Sprintf("listener %d 127.0.0.1", serverPort)
		}
		bad = append(bad, port)
		return line
	})
	if !seen[mosqDeviceListener] || !seen[mosqServerListener] || len(bad) > 0 {
		return "", fmt.Errorf("deploy/mosquitto/mosquitto.conf should have listeners %s and %s, and no other; has %v", mosqDeviceListener, mosqServerListener, seen)
	}
	conf = strings.ReplaceAll(conf, mosqShippedDir, dir+"/")
	for line := range strings.SplitSeq(conf, "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, "/etc/") {
			return "", fmt.Errorf("deploy/mosquitto/mosquitto.conf uses a file outside %s, which the benchmark cannot replace: %s", mosqShippedDir, line)
		}
	}
	head := fmt.Sprintf("user %s\nlog_dest file %s\n", username, filepath.Join(dir, "mosquitto.log"))
	if c.Persistence {
		head += fmt.Sprintf("persistence true\npersistence_location %s/\n", dir)
	}
	return head + conf + "\n", nil
}

// writePasswd writes users' passwords in plain text to path and hashes the
// file in place with mosquitto_passwd -U, returning how long that took.
func writePasswd(ctx context.Context, bin, path string, users map[string]string) (time.Duration, error) {
	var plain bytes.Buffer
	for u, pw := range users {
		fmt.Fprintf(&plain, "%s:%s\n", u, pw)
	}
	if err := os.WriteFile(path, plain.Bytes(), 0o600); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if out, err := exec.CommandContext(ctx, bin, "-U", path).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("mosquitto_passwd -U %s: %w\n%s", path, err, out)
	}
	return time.Since(t0), nil
}

// passwdIterations reads the PBKDF2 iteration count of the first hash in
// a Mosquitto 2 password file ("user:$7$ITERATIONS$salt$hash"), 0 if it
// holds none of that form.
func passwdIterations(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	_, hash, _ := bytes.Cut(line, []byte(":"))
	f := strings.Split(string(hash), "$")
	if len(f) < 3 || f[1] != "7" {
		return 0
	}
	n, _ := strconv.Atoi(f[2])
	return n
}

// start runs Mosquitto and waits until both listeners listen. It does not
// connect to see: in a storm its connection would wait in the same full
// accept queue as the devices'.
func (m *mosquitto) start(ctx context.Context) error {
	p, err := startProc("mosquitto", filepath.Join(m.dir, "mosquitto.out"), baseEnv(m.dir), m.bin, "-c", m.conf)
	if err != nil {
		return err
	}
	m.proc = p
	deadline := time.Now().Add(mosqStartTimeout)
	for _, port := range []int{m.devicePort, m.serverPort} {
		for !listening(port) {
			if p.exited() {
				return fmt.Errorf("mosquitto exited while starting: %s\n%s", tailFile(p.logPath, 10), tailFile(filepath.Join(m.dir, "mosquitto.log"), 10))
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return errors.New("mosquitto does not accept connections")
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

// kill stops Mosquitto at once, without a word to its clients (as a crash
// does), and waits for it.
func (m *mosquitto) kill() { m.proc.kill() }

// deviceAddr is where devices connect.
func (m *mosquitto) deviceAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.devicePort) }

// serverURL is where server nodes connect.
func (m *mosquitto) serverURL() string { return fmt.Sprintf("mqtt://127.0.0.1:%d", m.serverPort) }
