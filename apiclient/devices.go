package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/porthole/porthole/apitype"
)

// DeviceFilter narrows Devices; empty fields match everything.
type DeviceFilter struct {
	Fleet string // fleet name
	Name  string // exact device name
}

// Devices lists the devices of the fleets the caller may see.
func (c *Client) Devices(ctx context.Context, f DeviceFilter) ([]apitype.Device, error) {
	q := url.Values{}
	if f.Fleet != "" {
		q.Set("fleet", f.Fleet)
	}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	return list[apitype.Device](ctx, c, "/api/v1/devices", q)
}

// Device returns one device by ID.
func (c *Client) Device(ctx context.Context, id string) (*apitype.Device, error) {
	var d apitype.Device
	if err := c.Do(ctx, http.MethodGet, devicePath(id), nil, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// SetLabels replaces all of a device's labels.
func (c *Client) SetLabels(ctx context.Context, id string, labels map[string]string) error {
	if labels == nil {
		labels = map[string]string{} // "no labels", not a missing field
	}
	return c.Do(ctx, http.MethodPut, devicePath(id)+"/labels", nil, apitype.SetLabelsRequest{Labels: labels}, nil)
}

// DeleteDevice removes a device; it must enroll again to come back.
func (c *Client) DeleteDevice(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, devicePath(id), nil, nil, nil)
}

func devicePath(id string) string { return "/api/v1/devices/" + PathSegment(id) }

// ReportDeviceInfo tells the server what the calling device's agent is and
// what its owner's config allows (a client with Options.Device), and
// returns the device as the server then knows it.
func (c *Client) ReportDeviceInfo(ctx context.Context, info apitype.DeviceInfo) (*apitype.Device, error) {
	var d apitype.Device
	if err := c.Do(ctx, http.MethodPut, "/api/v1/device/info", nil, info, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
