package agentssh

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/testwait"
)

// sftpRoundTrip uploads and downloads a few MiB in dir and checks them.
func sftpRoundTrip(t *testing.T, c *ssh.Client, dir string) {
	t.Helper()
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	remote := filepath.Join(dir, "upload.bin")
	f, err := sc.Create(remote)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Rename(remote, remote+".2"); err != nil {
		t.Fatal(err)
	}
	f, err = sc.Open(remote + ".2")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := f.WriteTo(h); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Error("downloaded file differs from the uploaded one")
	}
	onDisk, err := os.ReadFile(remote + ".2")
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Errorf("file on disk differs (%v)", err)
	}
	if _, err := sc.ReadDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := sc.Remove(remote + ".2"); err != nil {
		t.Fatal(err)
	}
}

// wantOps checks that the recorder saw these operations, in this order
// (with others between).
func wantOps(t *testing.T, got []SFTPOp, want []SFTPOp) {
	t.Helper()
	i := 0
	for _, op := range got {
		if i < len(want) && op == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("recorded SFTP operations %+v; missing %+v", got, want[i])
	}
}

func TestSFTP(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, nil))
	dir := t.TempDir()
	sftpRoundTrip(t, c, dir)
	p := filepath.Join(dir, "upload.bin")
	testwait.For(t, 10*time.Second, "the remove to be recorded", func() bool {
		ops := e.rec.sftpOps()
		return len(ops) > 0 && ops[len(ops)-1].Op == "remove"
	})
	wantOps(t, e.rec.sftpOps(), []SFTPOp{
		{Op: "write", Path: p, Bytes: 3<<20 + 12345},
		{Op: "rename", Path: p, Target: p + ".2"},
		{Op: "read", Path: p + ".2", Bytes: 3<<20 + 12345},
		{Op: "list", Path: dir},
		{Op: "remove", Path: p + ".2"},
	})
}

// TestSFTPRelativePaths: relative paths start in the account's home, and
// are recorded absolute.
func TestSFTPRelativePaths(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, nil))
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	wd, err := sc.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := lookupAccount("")
	if wd != acct.Dir {
		t.Errorf("Getwd = %q; want %q", wd, acct.Dir)
	}
	if _, err := sc.Stat("no-such-file-here"); err == nil {
		t.Error("stat of a missing file succeeded")
	}
	if err := sc.Remove("no-such-file-here"); err == nil {
		t.Error("removed a missing file")
	}
	testwait.For(t, 10*time.Second, "the failed remove to be recorded", func() bool { return len(e.rec.sftpOps()) > 0 })
	op := e.rec.sftpOps()[0]
	if op.Op != "remove" || op.Path != filepath.Join(acct.Dir, "no-such-file-here") || op.Err == "" {
		t.Errorf("recorded %+v; want a failed remove of an absolute path", op)
	}
}

// TestRunAsNobody: shells, commands and SFTP run as RunAs, with its
// rights, not the agent's.
func TestRunAsNobody(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	srv := e.server(t, func(c *Config) {
		c.RunAs = "nobody"
		c.SFTPCommand = []string{testBinary(t), modeSFTPServer}
	})
	c, _ := e.login(t, srv)
	out, _, err := run(t, c, "id -u; id -g; pwd; echo $HOME $USER", nil)
	if err != nil || out != "65534\n65534\n/\n/nonexistent nobody\n" {
		t.Errorf("as nobody: %q, %v", out, err)
	}
	_, errOut, err := run(t, c, "cat /etc/shadow", nil)
	if err == nil || !strings.Contains(errOut, "Permission denied") {
		t.Errorf("nobody read /etc/shadow: %q, %v", errOut, err)
	}

	// A terminal is nobody's too.
	s, in, scr := shell(t, c)
	io.WriteString(in, "id -u; exit\n")
	s.Wait()
	if !strings.Contains(scr.String(), "65534") {
		t.Errorf("shell as nobody said %q", scr.String())
	}

	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chown(dir, 65534, 65534)
	sftpRoundTrip(t, c, dir)
	p := filepath.Join(dir, "upload.bin")
	testwait.For(t, 10*time.Second, "the remove to be recorded", func() bool {
		return slices.ContainsFunc(e.rec.sftpOps(), func(op SFTPOp) bool { return op.Op == "remove" })
	})
	wantOps(t, e.rec.sftpOps(), []SFTPOp{ // recorded as well through SFTPCommand
		{Op: "write", Path: p, Bytes: 3<<20 + 12345},
		{Op: "read", Path: p + ".2", Bytes: 3<<20 + 12345},
		{Op: "remove", Path: p + ".2"},
	})

	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	f, err := sc.Create(filepath.Join(dir, "mine"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(filepath.Join(dir, "mine"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 {
		t.Errorf("file made over SFTP belongs to uid %d; want nobody", st.Uid)
	}
	if _, err := sc.Create("/etc/agentssh-test-must-not-exist"); err == nil {
		os.Remove("/etc/agentssh-test-must-not-exist")
		t.Error("nobody wrote to /etc over SFTP")
	}
	if _, err := sc.Open("/etc/shadow"); !errors.Is(err, os.ErrPermission) {
		t.Errorf("nobody opened /etc/shadow: %v", err)
	}
	testwait.For(t, 10*time.Second, "the refused open to be recorded", func() bool {
		return slices.ContainsFunc(e.rec.sftpOps(), func(op SFTPOp) bool { return op.Path == "/etc/shadow" })
	})
	for _, op := range e.rec.sftpOps() {
		if op.Path == "/etc/shadow" && (op.Op != "read" || op.Err == "") {
			t.Errorf("recorded %+v; want a refused read", op)
		}
	}
}
