package apiclient

import (
	"context"
	"net/http"

	"github.com/porthole/porthole/apitype"
)

// Login exchanges an email, password and TOTP code for a bearer token.
func (c *Client) Login(ctx context.Context, req apitype.LoginRequest) (*apitype.LoginResponse, error) {
	var resp apitype.LoginResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/login", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Logout revokes the token the client was made with.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, "/api/v1/logout", nil, nil, nil)
}

// Me returns the user the token belongs to, with their fleet roles.
func (c *Client) Me(ctx context.Context) (*apitype.User, error) {
	var u apitype.User
	if err := c.Do(ctx, http.MethodGet, "/api/v1/me", nil, nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Tokens lists the caller's API tokens (without their secrets).
func (c *Client) Tokens(ctx context.Context) ([]apitype.TokenInfo, error) {
	return list[apitype.TokenInfo](ctx, c, "/api/v1/tokens", nil)
}

// RevokeToken revokes one of the caller's tokens by ID.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/tokens/"+PathSegment(id), nil, nil, nil)
}

// Reauth sends a fresh code from the caller's authenticator app, recorded
// as the login's second factor (fleets whose policy sets reauth ask for
// one within their window before a session).
func (c *Client) Reauth(ctx context.Context, code string) (*apitype.ReauthResponse, error) {
	var resp apitype.ReauthResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/reauth", nil, apitype.ReauthRequest{TOTP: code}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// DeviceCode begins `porthole login --sso`: a device code to poll with,
// and the user code and page to confirm it at in a browser.
func (c *Client) DeviceCode(ctx context.Context, req apitype.DeviceCodeRequest) (*apitype.DeviceCodeResponse, error) {
	var resp apitype.DeviceCodeResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/sso/device-code", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// DeviceToken polls once for the login of a device code: an *Error with
// code apitype.CodeAuthorizationPending or CodeSlowDown while the
// engineer has not signed in.
func (c *Client) DeviceToken(ctx context.Context, deviceCode string) (*apitype.LoginResponse, error) {
	var resp apitype.LoginResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/sso/token", nil, apitype.DeviceTokenRequest{DeviceCode: deviceCode}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
