package api

import (
	"net/http"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/humanize"
	"github.com/porthole/porthole/store"
)

// deviceOffline is the answer to a request that needs the device on the
// control channel (a session) when it is not connected: when it was last
// seen, or that it never connected at all. It is nil for an online device.
func deviceOffline(d *store.Device, now time.Time) error {
	switch {
	case d.Online:
		return nil
	case d.LastSeen.IsZero():
		return errorf(http.StatusConflict, apitype.CodeDeviceOffline,
			"%s has never connected since it enrolled %s ago; check that porthole-agent runs on it and can reach the server",
			d.Name, humanize.Duration(now.Sub(d.EnrolledAt)))
	default:
		return errorf(http.StatusConflict, apitype.CodeDeviceOffline,
			"%s is offline (last seen %s ago)", d.Name, humanize.Duration(now.Sub(d.LastSeen)))
	}
}
