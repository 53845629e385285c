package api

import (
	"errors"
	"fmt"
	"strings"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// authenticateDevice finds the calling device from "Authorization: Device
// <fleet>/<device> <password>", the password freshly signed with the
// device's enrolled key (control.DevicePassword). A device that does not
// exist and a bad password get the same answer, so the API tells no one
// which device names exist.
func (c *call) authenticateDevice() error {
	refused := unauthenticated("this request needs a device's signed credential")
	scheme, rest, _ := strings.Cut(c.r.Header.Get("Authorization"), " ")
	who, password, _ := strings.Cut(strings.TrimSpace(rest), " ")
	fleet, name, ok := strings.Cut(who, "/")
	if !strings.EqualFold(scheme, apiclient.DeviceAuthScheme) || !ok || password == "" ||
		!control.ValidName(fleet) || !control.ValidName(name) {
		return refused
	}
	ds, err := c.s.store.ListDevices(c.ctx, store.DeviceFilter{FleetName: fleet, Name: name})
	if err != nil {
		return fmt.Errorf("looking up device %s/%s: %w", fleet, name, err)
	}
	if len(ds) != 1 {
		return refused
	}
	key, err := control.ParseDeviceKey(ds[0].PublicKey)
	if err != nil {
		return fmt.Errorf("device %s: %w", ds[0].ID, err)
	}
	if err := control.CheckDevicePassword(key, fleet, name, password, c.s.now()); err != nil {
		if errors.Is(err, control.ErrDevicePassword) {
			c.s.logger.Warn("device credential refused", "request_id", requestID(c.ctx), "fleet", fleet, "device", name, "err", err)
			return refused
		}
		return err
	}
	c.dev = ds[0]
	c.ctx = audit.WithActor(c.ctx, audit.Device(c.dev.ID, fleet, name)) // the actor of what it records
	return nil
}

// whoAmI is GET /api/v1/device: the calling device as the server knows it,
// so that `porthole-agent status` can show that the server still knows it.
func (s *Server) whoAmI(c *call, _ *none) (apitype.Device, error) {
	return apiDevice(c.dev), nil
}
