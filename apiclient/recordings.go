package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/porthole/porthole/apitype"
)

// UploadOffsetError is a chunk the server refused because it does not
// start at or before the file's size there: Size is where to resume.
type UploadOffsetError struct {
	Size int64
	Err  *Error
}

func (e *UploadOffsetError) Error() string { return e.Err.Error() }
func (e *UploadOffsetError) Unwrap() error { return e.Err }

// UploadRecordingFile sends a chunk of a file of the calling device's
// session recording: for meta.json the whole file (offset 0), for the
// others the bytes from offset on. It returns the file's size on the
// server, which is offset+len(data) or, for a chunk the server already
// had, more. A chunk past the server's size fails with
// *UploadOffsetError; one past the server's caps with an *Error of code
// apitype.CodeTooLarge.
func (c *Client) UploadRecordingFile(ctx context.Context, session, name string, offset int64, data []byte) (int64, error) {
	var q url.Values
	if name != "meta.json" {
		q = url.Values{"offset": {strconv.FormatInt(offset, 10)}}
	}
	path := "/api/v1/device/sessions/" + PathSegment(session) + "/files/" + PathSegment(name)
	resp, err := c.send(ctx, http.MethodPut, path, q, data, "application/octet-stream")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("reading the server's answer to an upload of %s: %w", name, err)
	}
	if resp.StatusCode == http.StatusConflict {
		var ue apitype.UploadError
		if json.Unmarshal(body, &ue) == nil && ue.Error.Code == apitype.CodeUploadOffset {
			return 0, &UploadOffsetError{Size: ue.Size, Err: &Error{Status: resp.StatusCode, Code: ue.Error.Code, Message: ue.Error.Message}}
		}
	}
	if err := answerError(resp, body, "PUT", path); err != nil {
		return 0, err
	}
	var res apitype.UploadResult
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("the server's answer to an upload of %s is not what this client understands: %w", name, err)
	}
	return res.Size, nil
}

// CompleteRecording tells the server the calling device sent the whole
// recording of its session; files are the sizes on the device.
func (c *Client) CompleteRecording(ctx context.Context, session string, files map[string]int64) (*apitype.Recording, error) {
	var rec apitype.Recording
	err := c.Do(ctx, http.MethodPost, "/api/v1/device/sessions/"+PathSegment(session)+"/recording/complete", nil,
		apitype.CompleteRecordingRequest{Files: files}, &rec)
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// OwnerLink asks for a new read-only link for the calling device's owner,
// which replaces the last one.
func (c *Client) OwnerLink(ctx context.Context) (*apitype.OwnerLink, error) {
	var l apitype.OwnerLink
	if err := c.Do(ctx, http.MethodPost, "/api/v1/device/owner-link", nil, nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Recording is what the server holds of a session's recording.
func (c *Client) Recording(ctx context.Context, session string) (*apitype.Recording, error) {
	var rec apitype.Recording
	if err := c.Do(ctx, http.MethodGet, "/api/v1/sessions/"+PathSegment(session)+"/recording", nil, nil, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// MaxRecordingFile bounds what RecordingFile reads of one file.
const MaxRecordingFile = 256 << 20

// RecordingFile reads one file of a session's uploaded recording, whole:
// a player must not hold the connection open for as long as it plays.
func (c *Client) RecordingFile(ctx context.Context, session, name string) ([]byte, error) {
	path := "/api/v1/sessions/" + PathSegment(session) + "/recording/files/" + PathSegment(name)
	resp, err := c.send(ctx, http.MethodGet, path, nil, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxRecordingFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s of session %s from the server: %w", name, session, err)
	}
	if err := answerError(resp, body, "GET", path); err != nil {
		return nil, err
	}
	if len(body) > MaxRecordingFile {
		return nil, fmt.Errorf("%s of session %s is over %d MiB; this client reads no more", name, session, MaxRecordingFile>>20)
	}
	return body, nil
}

// RecordingFilter narrows Recordings; zero fields match everything.
type RecordingFilter struct {
	Fleet    string   // fleet name
	Device   string   // device name; needs Fleet
	Sessions []string // session IDs, at most 100
}

// Recordings lists the uploaded recordings of sessions in the caller's
// fleets, without their files, newest session first.
func (c *Client) Recordings(ctx context.Context, f RecordingFilter) ([]apitype.Recording, error) {
	q := url.Values{}
	if f.Fleet != "" {
		q.Set("fleet", f.Fleet)
	}
	if f.Device != "" {
		q.Set("device", f.Device)
	}
	for _, id := range f.Sessions {
		q.Add("session", id)
	}
	return list[apitype.Recording](ctx, c, "/api/v1/recordings", q)
}
