package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
)

func TestInitWritesAUsableDataDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	var out bytes.Buffer
	err := Init(context.Background(), InitOptions{
		DataDir: dir, AdminEmail: "ops@example.com", PublicURL: "https://porthole.test:9443",
	}, &out)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	for _, want := range []string{"Password:", "otpauth://totp/", "sha256:", "portholed serve --config"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("init output lacks %q:\n%s", want, out.String())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFileName))
	if err != nil {
		t.Fatalf("the config init wrote does not load: %v", err)
	}
	if cfg.PublicURL != "https://porthole.test:9443" || cfg.Listen != ":9443" || cfg.DataDir != dir {
		t.Errorf("config = %+v", cfg)
	}
	text, err := os.ReadFile(filepath.Join(dir, ConfigFileName))
	if err != nil || !strings.Contains(string(text), "\n  listen: \":8883\"\n") || cfg.Broker.Listen != ":8883" {
		t.Errorf("the config does not show broker.listen (%v):\n%s", err, text)
	}
	srv, err := Open(context.Background(), cfg, discardLogger())
	if err != nil {
		t.Fatalf("Open on the new data dir: %v", err)
	}
	defer srv.Close()
	if n, err := srv.Store().CountUsers(context.Background()); err != nil || n != 1 {
		t.Errorf("users = %d, %v; want the one admin", n, err)
	}

	// Never overwrite.
	err = Init(context.Background(), InitOptions{DataDir: dir, AdminEmail: "x@example.com"}, &out)
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second Init = %v; want a refusal", err)
	}
}

func TestInitNeedsEmail(t *testing.T) {
	t.Parallel()
	err := Init(context.Background(), InitOptions{DataDir: t.TempDir()}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--admin-email") {
		t.Errorf("Init without email = %v", err)
	}
}

// TestDev starts the dev server, uses the credentials it prints, and checks
// that stopping it removes its state.
func TestDev(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan DevCredentials, 1)
	done := make(chan error, 1)
	go func() {
		done <- Dev(ctx, DevOptions{Listen: "127.0.0.1:0"}, func(c DevCredentials) { got <- c })
	}()
	var c DevCredentials
	select {
	case c = <-got:
	case err := <-done:
		t.Fatalf("Dev returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Dev did not become ready in 30 s")
	}
	var banner bytes.Buffer
	PrintDevBanner(&banner, c)
	if !strings.HasPrefix(c.Broker, "mqtts://127.0.0.1:") || strings.HasSuffix(c.Broker, ":0") {
		t.Errorf("dev broker = %q; want mqtts://127.0.0.1:PORT", c.Broker)
	}
	for _, want := range []string{"\nPORTHOLE_SERVER=" + c.Server + "\n", "\nPORTHOLE_TOKEN=" + c.Token + "\n", "porthole-agent enroll --server " + c.Server, "WARNING", c.Broker} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}

	client, err := apiclient.New(c.Server, apiclient.Options{Token: c.Token, Fingerprint: c.Fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	var fleets []apitype.Fleet
	if err := client.Do(ctx, "GET", "/api/v1/fleets", nil, nil, &fleets); err != nil {
		t.Fatalf("the dev token does not work: %v", err)
	}
	if len(fleets) != 1 || fleets[0].Name != "dev" {
		t.Errorf("fleets = %+v; want [dev]", fleets)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Dev after cancel = %v; want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Dev did not stop within 15 s of cancel")
	}
	if _, err := os.Stat(c.DataDir); !os.IsNotExist(err) {
		t.Errorf("dev data dir %s still exists after stop (%v)", c.DataDir, err)
	}
}
