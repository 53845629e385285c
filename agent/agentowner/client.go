package agentowner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Client talks to a running agent over its owner's socket: what
// porthole-agent request, status, approve, deny and revoke use.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient is a client of the agent serving socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Status is the agent's consent as it stands.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	return &st, c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// Request opens a support window (or shows the open one).
func (c *Client) Request(ctx context.Context, reason string, d time.Duration) (*RequestAnswer, error) {
	var a RequestAnswer
	return &a, c.do(ctx, http.MethodPost, "/v1/request", Request{Reason: reason, ForS: int(d / time.Second)}, &a)
}

// Answer approves or denies a waiting session; it returns the session's
// full id.
func (c *Client) Answer(ctx context.Context, session string, approve bool) (string, error) {
	path := "/v1/deny"
	if approve {
		path = "/v1/approve"
	}
	var a Answer
	err := c.do(ctx, http.MethodPost, path, Answer{Session: session}, &a)
	return a.Session, err
}

// Revoke ends every session and closes the window.
func (c *Client) Revoke(ctx context.Context) (*RevokeAnswer, error) {
	var a RevokeAnswer
	return &a, c.do(ctx, http.MethodPost, "/v1/revoke", struct{}{}, &a)
}

// History is the last n events of the agent's log, oldest first.
func (c *Client) History(ctx context.Context, n int) ([]json.RawMessage, error) {
	var out []json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/v1/history?n="+url.QueryEscape(strconv.Itoa(n)), nil, &out)
}

// Error is an error the agent answered.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.explain(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the agent's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			return &Error{Status: resp.StatusCode, Message: eb.Error}
		}
		return &Error{Status: resp.StatusCode, Message: "the agent answered " + resp.Status}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the agent's answer is not what this porthole-agent understands (are both the same version?): %w", err)
	}
	return nil
}

// explain says why the agent could not be reached, and what to do.
func (c *Client) explain(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("the porthole agent is not running (nothing answers on %s): start it (systemctl start porthole-agent, or porthole-agent run), or give --socket if it uses another", c.socket)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("you may not use the agent's socket %s: run this as root, or join the group it belongs to (usually porthole: sudo usermod -aG porthole $USER, then log in again)", c.socket)
	}
	return fmt.Errorf("talking to the agent on %s: %w", c.socket, err)
}
