package api

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

func TestDeviceOffline(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	enrolled := now.Add(-72 * time.Hour)
	for _, tt := range []struct {
		name string
		d    store.Device
		want string // "" for no error
	}{
		{"online", store.Device{Name: "dev1", Online: true, LastSeen: now.Add(-time.Hour)}, ""},
		{"offline", store.Device{Name: "dev1", LastSeen: now.Add(-3*time.Hour - 20*time.Minute), EnrolledAt: enrolled},
			"dev1 is offline (last seen 3 h ago)"},
		{"never connected", store.Device{Name: "dev1", EnrolledAt: enrolled},
			"dev1 has never connected since it enrolled 3 d ago; check that porthole-agent runs on it and can reach the server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := deviceOffline(&tt.d, now)
			if tt.want == "" {
				if err != nil {
					t.Errorf("deviceOffline = %v; want nil", err)
				}
				return
			}
			var he *httpError
			if !errors.As(err, &he) || he.status != http.StatusConflict || he.code != apitype.CodeDeviceOffline || he.message != tt.want {
				t.Errorf("deviceOffline = %#v; want 409 %s %q", err, apitype.CodeDeviceOffline, tt.want)
			}
		})
	}
}
