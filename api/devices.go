package api

import (
	"fmt"
	"math"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// listDevices is GET /api/v1/devices?fleet=F&name=N: devices of the fleets
// the caller has a role in (every fleet for administrators), narrowed by
// fleet and name.
func (s *Server) listDevices(c *call, _ *none) ([]apitype.Device, error) {
	q := c.r.URL.Query()
	filter := store.DeviceFilter{Name: q.Get("name")}
	if filter.Name != "" {
		if err := checkName("device name", filter.Name); err != nil {
			return nil, err
		}
	}
	fleetIDs, err := c.fleetScope(q.Get("fleet"))
	if err != nil {
		return nil, err
	}
	filter.FleetIDs = fleetIDs
	ds, err := s.store.ListDevices(c.ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	return convertAll(ds, apiDevice), nil
}

// getDevice is GET /api/v1/devices/{id}.
func (s *Server) getDevice(c *call, _ *none) (apitype.Device, error) {
	d, err := c.device(c.r.PathValue("id"))
	if err != nil {
		return apitype.Device{}, err
	}
	return apiDevice(d), nil
}

// setLabels is PUT /api/v1/devices/{id}/labels: it replaces every label.
func (s *Server) setLabels(c *call, req *apitype.SetLabelsRequest) (apitype.Device, error) {
	d, err := c.device(c.r.PathValue("id"))
	if err != nil {
		return apitype.Device{}, err
	}
	if err := checkLabels(req.Labels); err != nil {
		return apitype.Device{}, err
	}
	changed := audit.Event{Kind: audit.LabelsChanged, FleetID: d.FleetID, Fleet: d.FleetName, DeviceID: d.ID, Device: d.Name,
		Detail: map[string]string{"labels": formatLabels(req.Labels)}}
	if err := s.store.SetDeviceLabels(c.withAudit(changed).ctx, d.ID, req.Labels); err != nil {
		return apitype.Device{}, fmt.Errorf("setting the labels of device %s: %w", d.ID, err)
	}
	d.Labels = req.Labels
	return apiDevice(d), nil
}

// deleteDevice is DELETE /api/v1/devices/{id}. The store announces the
// deletion to every server node (store.Changes), which end the device's
// connections.
func (s *Server) deleteDevice(c *call, _ *none) (none, error) {
	d, err := c.device(c.r.PathValue("id"))
	if err != nil {
		return none{}, err
	}
	// Its sessions go with it, and so do their recordings' bytes.
	sessions, err := s.store.ListSessions(c.ctx, store.SessionFilter{DeviceID: d.ID, Limit: math.MaxInt32})
	if err != nil {
		return none{}, fmt.Errorf("listing the sessions of device %s: %w", d.ID, err)
	}
	deleted := audit.Event{Kind: audit.DeviceDeleted, FleetID: d.FleetID, Fleet: d.FleetName, DeviceID: d.ID, Device: d.Name}
	if err := s.store.DeleteDevice(c.withAudit(deleted).ctx, d.ID); err != nil {
		return none{}, fmt.Errorf("deleting device %s: %w", d.ID, err)
	}
	for _, ses := range sessions {
		if err := s.recDisk.delete(c.ctx, ses); err != nil {
			s.logger.Error("removing a deleted device's recording", "session", ses.ID, "err", err)
		}
	}
	s.logger.Info("device deleted", "request_id", requestID(c.ctx), "by", c.user.ID, "fleet", d.FleetName, "device", d.Name, "device_id", d.ID)
	return none{}, nil
}
