package apiclient

import (
	"context"
	"net/http"
	"net/url"
)

// list GETs a JSON array. It never returns a nil slice on success, so a
// caller that prints the result as JSON prints [] rather than null.
func list[T any](ctx context.Context, c *Client, path string, query url.Values) ([]T, error) {
	var out []T
	if err := c.Do(ctx, http.MethodGet, path, query, nil, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}
