package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/internal/testdisk"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/sqlitestore"
)

// TestDiskFull: the server's disk fills. Writes fail with ErrDiskFull
// (which the API answers in words), nothing is half written, the audit
// chain still verifies, and once there is room again the store goes on
// with everything written before.
func TestDiskFull(t *testing.T) {
	disk := testdisk.Tiny(t, "2m")
	ctx := context.Background()
	s, err := sqlitestore.Open(filepath.Join(disk, "porthole.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateFleet(ctx, &store.Fleet{Name: "before"}); err != nil {
		t.Fatal(err)
	}
	free := testdisk.Fill(t, disk)
	big := strings.Repeat("x", 4000)
	var werr error
	written := 0
	for i := 0; i < 10000 && werr == nil; i++ {
		werr = s.AppendAudit(ctx, audit.Event{Kind: audit.LoginFailed, Actor: audit.System, Detail: map[string]string{"n": fmt.Sprint(i), "pad": big}})
		if werr == nil {
			written++
		}
	}
	if !errors.Is(werr, store.ErrDiskFull) {
		t.Fatalf("writing to a full disk: %v; want ErrDiskFull", werr)
	}
	if err := s.CreateFleet(ctx, &store.Fleet{Name: "while-full"}); !errors.Is(err, store.ErrDiskFull) {
		t.Errorf("a fleet on a full disk: %v; want ErrDiskFull", err)
	}
	free()
	var check string
	if err := s.DB().QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	if r, err := audit.Verify(ctx, s, audit.Head{}); err != nil || !r.OK() || r.Head.Seq < int64(written) {
		t.Fatalf("the audit chain after the disk filled: %+v, %v (%d appended)", r, err, written)
	}
	if err := s.CreateFleet(ctx, &store.Fleet{Name: "after"}); err != nil {
		t.Fatalf("a fleet once there is room: %v", err)
	}
	fleets, err := s.ListFleets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fleets {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "before") || !strings.Contains(got, "after") || strings.Contains(got, "while-full") {
		t.Errorf("fleets = %s; want before and after", got)
	}
}
