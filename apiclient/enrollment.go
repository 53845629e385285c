package apiclient

import (
	"context"
	"net/http"

	"github.com/porthole/porthole/apitype"
)

// EnrollmentTokens lists a fleet's enrollment tokens (without secrets).
func (c *Client) EnrollmentTokens(ctx context.Context, fleet string) ([]apitype.EnrollmentToken, error) {
	return list[apitype.EnrollmentToken](ctx, c, enrollmentTokensPath(fleet), nil)
}

// CreateEnrollmentToken makes a token devices enroll into fleet with. The
// answer carries the secret; the server never shows it again.
func (c *Client) CreateEnrollmentToken(ctx context.Context, fleet string, req apitype.CreateEnrollmentTokenRequest) (*apitype.EnrollmentToken, error) {
	var t apitype.EnrollmentToken
	if err := c.Do(ctx, http.MethodPost, enrollmentTokensPath(fleet), nil, req, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// DeleteEnrollmentToken revokes an enrollment token by ID; devices already
// enrolled with it stay enrolled.
func (c *Client) DeleteEnrollmentToken(ctx context.Context, fleet, id string) error {
	return c.Do(ctx, http.MethodDelete, enrollmentTokensPath(fleet)+"/"+PathSegment(id), nil, nil, nil)
}

func enrollmentTokensPath(fleet string) string { return fleetPath(fleet) + "/enrollment-tokens" }
