package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/porthole/porthole/apitype"
)

// RequestFilter narrows Requests; empty fields match everything.
type RequestFilter struct {
	Fleet   string // fleet name
	Device  string // device name; needs Fleet
	Session string // the approval request of this session
	// All includes closed and expired requests; without it only the queue
	// (neither closed nor expired) is listed.
	All bool
}

// Requests lists the support queue of the caller's fleets, newest first.
func (c *Client) Requests(ctx context.Context, f RequestFilter) ([]apitype.SupportRequest, error) {
	q := url.Values{}
	for k, v := range map[string]string{"fleet": f.Fleet, "device": f.Device, "session": f.Session} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.All {
		q.Set("all", "true")
	}
	return list[apitype.SupportRequest](ctx, c, "/api/v1/requests", q)
}

// Request returns one support request.
func (c *Client) Request(ctx context.Context, id string) (*apitype.SupportRequest, error) {
	return c.request(ctx, http.MethodGet, requestPath(id), nil)
}

// ClaimRequest takes a support request for the caller.
func (c *Client) ClaimRequest(ctx context.Context, id string) (*apitype.SupportRequest, error) {
	return c.request(ctx, http.MethodPost, requestPath(id)+"/claim", nil)
}

// CloseRequest closes a support request.
func (c *Client) CloseRequest(ctx context.Context, id string) (*apitype.SupportRequest, error) {
	return c.request(ctx, http.MethodPost, requestPath(id)+"/close", nil)
}

// ApproveRequest approves, as a second engineer of the fleet, the session
// a four-eyes request holds.
func (c *Client) ApproveRequest(ctx context.Context, id string) (*apitype.SupportRequest, error) {
	return c.request(ctx, http.MethodPost, requestPath(id)+"/approve", nil)
}

// DenyRequest refuses the session a four-eyes request holds.
func (c *Client) DenyRequest(ctx context.Context, id string) (*apitype.SupportRequest, error) {
	return c.request(ctx, http.MethodPost, requestPath(id)+"/deny", nil)
}

// PostDeviceRequest puts the calling device's request in its fleet's queue
// (a client with Options.Device).
func (c *Client) PostDeviceRequest(ctx context.Context, req apitype.DeviceRequest) (*apitype.SupportRequest, error) {
	return c.request(ctx, http.MethodPost, "/api/v1/device/requests", req)
}

// CloseDeviceRequest closes one of the calling device's requests, saying
// why (a client with Options.Device).
func (c *Client) CloseDeviceRequest(ctx context.Context, id, reason string) (*apitype.SupportRequest, error) {
	return c.request(ctx, http.MethodPost, "/api/v1/device/requests/"+PathSegment(id)+"/close", apitype.CloseRequest{Reason: reason})
}

func (c *Client) request(ctx context.Context, method, path string, in any) (*apitype.SupportRequest, error) {
	var r apitype.SupportRequest
	if err := c.Do(ctx, method, path, nil, in, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func requestPath(id string) string { return "/api/v1/requests/" + PathSegment(id) }
