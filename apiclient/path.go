package apiclient

import (
	"net/url"
	"strings"
)

// PathSegment escapes s as one segment of a request path: "/" and "?" are
// escaped, and so are the dot segments "." and "..", which a server would
// otherwise resolve against the path before them.
func PathSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

// BaseURL returns the server's URL as given to New, without a trailing
// slash.
func (c *Client) BaseURL() string { return c.base.String() }
