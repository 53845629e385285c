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
