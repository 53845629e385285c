package apiclient

import (
	"context"
	"net/http"

	"github.com/porthole/porthole/apitype"
)

// Users lists every user with their fleet roles (administrators only).
func (c *Client) Users(ctx context.Context) ([]apitype.User, error) {
	return list[apitype.User](ctx, c, "/api/v1/users", nil)
}

// CreateUser makes a user (administrators only). The answer carries the
// initial password (when the server generated it) and the TOTP URI, once.
func (c *Client) CreateUser(ctx context.Context, req apitype.CreateUserRequest) (*apitype.CreateUserResponse, error) {
	var resp apitype.CreateUserResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/users", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// DeleteUser deletes a user (by ID or email) with their logins and fleet
// roles; their open sessions close (administrators only).
func (c *Client) DeleteUser(ctx context.Context, user string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/users/"+PathSegment(user), nil, nil, nil)
}

// ResetUser gives a user (by ID or email) a new password (password, or a
// generated one when empty) and TOTP secret, returned once; their logins
// and open sessions end (administrators only).
func (c *Client) ResetUser(ctx context.Context, user, password string) (*apitype.CreateUserResponse, error) {
	var resp apitype.CreateUserResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/users/"+PathSegment(user)+"/reset", nil, apitype.ResetUserRequest{Password: password}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
