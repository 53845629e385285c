package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/porthole/porthole/apitype"
)

// CreateSession asks for a session on a device (by ID). The device is then
// asked to connect; WaitSession follows it.
func (c *Client) CreateSession(ctx context.Context, deviceID string, req apitype.CreateSessionRequest) (*apitype.CreateSessionResponse, error) {
	var resp apitype.CreateSessionResponse
	if err := c.Do(ctx, http.MethodPost, devicePath(deviceID)+"/sessions", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// CreateSessionByName opens a session on the device req.Device names (in
// req.Fleet, if set), by POST /api/v1/sessions: one request where
// looking the device up first takes two. A server that predates the
// route answers an *Error with status 405.
func (c *Client) CreateSessionByName(ctx context.Context, req apitype.CreateSessionRequest) (*apitype.CreateSessionResponse, error) {
	var resp apitype.CreateSessionResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/sessions", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Session returns one session.
func (c *Client) Session(ctx context.Context, id string) (*apitype.Session, error) {
	var s apitype.Session
	if err := c.Do(ctx, http.MethodGet, sessionPath(id), nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// WaitSession long-polls a session until it reaches state (or goes past
// it: closed is past everything), or for up to wait (the server caps it at
// 60 s), and returns it as it is then.
func (c *Client) WaitSession(ctx context.Context, id, state string, wait time.Duration) (*apitype.Session, error) {
	q := url.Values{"wait": {state}, "timeout": {wait.String()}}
	var s apitype.Session
	if err := c.Do(ctx, http.MethodGet, sessionPath(id), q, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// CloseSession closes a session and returns it closed.
func (c *Client) CloseSession(ctx context.Context, id string) (*apitype.Session, error) {
	var s apitype.Session
	if err := c.Do(ctx, http.MethodDelete, sessionPath(id), nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// SessionFilter narrows Sessions; empty fields match everything.
type SessionFilter struct {
	Fleet    string // fleet name
	Device   string // device name; needs Fleet
	OpenOnly bool
}

// Sessions lists sessions of the caller's fleets, newest first.
func (c *Client) Sessions(ctx context.Context, f SessionFilter) ([]apitype.Session, error) {
	q := url.Values{}
	if f.Fleet != "" {
		q.Set("fleet", f.Fleet)
	}
	if f.Device != "" {
		q.Set("device", f.Device)
	}
	if f.OpenOnly {
		q.Set("open", "true")
	}
	return list[apitype.Session](ctx, c, "/api/v1/sessions", q)
}

func sessionPath(id string) string { return "/api/v1/sessions/" + PathSegment(id) }

// CAKeys returns the server's public certificate authorities and relay
// address.
func (c *Client) CAKeys(ctx context.Context) (*apitype.CAKeys, error) {
	var k apitype.CAKeys
	if err := c.Do(ctx, http.MethodGet, "/api/v1/ca", nil, nil, &k); err != nil {
		return nil, err
	}
	return &k, nil
}
