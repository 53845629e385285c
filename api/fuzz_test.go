package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// serveFuzz sends one request to the fixture's API handler in process and
// checks what every answer must be, whatever was asked: never a server
// error (a panic or an unforeseen failure is a 500), an error in the API's
// form, JSON on success, and soon.
func serveFuzz(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	start := time.Now()
	fx.srv.Handler().ServeHTTP(w, req)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("%s %s took %v", req.Method, req.URL, took)
	}
	body := w.Body.Bytes()
	switch {
	case w.Code >= 500:
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, w.Code, body)
	case w.Code >= 400:
		var eb apitype.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Fatalf("%s %s: %d with no error body: %s", req.Method, req.URL, w.Code, body)
		}
	case w.Code == http.StatusNoContent:
	case !json.Valid(body):
		t.Fatalf("%s %s: %d with a body that is not JSON: %s", req.Method, req.URL, w.Code, body)
	}
	return w
}

// FuzzRequestBody decodes arbitrary bytes as the JSON body of each route
// that takes one, as the handlers do (decodeBody). A body is refused with
// a 400 or 413 that says why, never an internal error; what is accepted is
// one JSON value that, encoded again, decodes to the same request.
func FuzzRequestBody(f *testing.F) {
	var types []reflect.Type
	for _, rt := range fx.srv.routes {
		if rt.ep.req != nil && !slices.Contains(types, rt.ep.req) {
			types = append(types, rt.ep.req)
		}
	}
	for i := range types {
		f.Add(byte(i), []byte(`{}`))
	}
	for _, body := range []string{
		`{"email":"ann@example.com","password":"p","code":"123456"}`,
		`{"name":"kitchen-amp","public_key":"ssh-ed25519 AAAA","token":"phe_x"}`,
		`{"labels":{"site":"berlin","":"x"}}`,
		`{"ports":[22,65536],"idle_timeout_s":-1,"reason":"\u0000"}`,
		`{"files":{"0001-pty.cast":1e30}}`,
		`{"role":"owner"} {"role":"owner"}`,
		`{"Email":"ANN@EXAMPLE.COM","x":1}`,
		`[1,2]`, `null`, ``, `{"uses":1.5}`, `{"expires_at":"2026-13-01T00:00:00Z"}`,
	} {
		f.Add(byte(0), []byte(body))
		f.Add(byte(len(types)/2), []byte(body))
	}
	decode := func(typ reflect.Type, body []byte) (any, error) {
		v := reflect.New(typ).Interface()
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		return v, decodeBody(httptest.NewRecorder(), r, fx.srv.maxBody, v)
	}
	f.Fuzz(func(t *testing.T, which byte, body []byte) {
		typ := types[int(which)%len(types)]
		v, err := decode(typ, body)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.status != http.StatusBadRequest && he.status != http.StatusRequestEntityTooLarge || he.message == "" {
				t.Fatalf("%s body %q refused with %#v", typ, body, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("%s body %q accepted but is not JSON", typ, body)
		}
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decode(typ, enc)
		if err != nil {
			t.Fatalf("%s body %q read as %s, which is refused: %v", typ, body, enc, err)
		}
		if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s body %q read as %s, which reads as %s", typ, body, enc, enc2)
		}
	})
}

// FuzzAPIQuery sends arbitrary query strings and bodies to routes of the
// fixture's server, as its administrator: the lists with their filters
// (audit's since, after and limit among them), a session's long poll
// (wait= and timeout=, on a closed session, so it answers at once), and
// routes that take bodies and write to the store. Every answer is one
// serveFuzz accepts, and no list is longer than the most one may ask for.
func FuzzAPIQuery(f *testing.F) {
	fl := fx.newFleet(f)
	d := fx.newDevice(f, fl)
	closed := fx.newSession(f, d)
	_, _, err := fx.store.TransitionSession(context.Background(), closed.ID, []store.SessionState{store.SessionConnecting},
		store.SessionClosed, "engineer_closed", time.Now())
	must(f, err)
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/audit"},
		{"GET", "/api/v1/sessions"},
		{"GET", "/api/v1/recordings"},
		{"GET", "/api/v1/requests"},
		{"GET", "/api/v1/devices"},
		{"GET", "/api/v1/sessions/" + closed.ID},
		{"PUT", "/api/v1/devices/" + d.ID + "/labels"},
		{"POST", "/api/v1/fleets/" + fl.Name + "/enrollment-tokens"},
		{"PUT", "/api/v1/fleets/" + fl.Name + "/members/" + fx.users["target"].ID},
		{"POST", "/api/v1/devices/" + d.ID + "/sessions"},
		{"POST", "/api/v1/enroll"},
	}
	for i, q := range []string{
		"fleet=acme&device=dev-1&session=s&since=2026-11-22T10:30:00Z&after=5&limit=1000",
		"open=true&fleet=" + fl.Name + "&device=" + d.Name,
		"session=a&session=b&fleet=nope",
		"all=true&fleet=acme&device=x",
		"fleet=" + fl.Name + "&name=" + d.Name,
		"wait=active&timeout=1ns",
		"", "", "", "", "",
	} {
		f.Add(byte(i), q, []byte(nil))
	}
	f.Add(byte(0), "limit=0&after=-1&since=yesterday", []byte(nil))
	f.Add(byte(5), "wait=closed&timeout=-5s&x=1", []byte(nil))
	f.Add(byte(6), "", []byte(`{"labels":{"site":"berlin","room":"2"}}`))
	f.Add(byte(7), "", []byte(`{"uses":3,"ttl":"24h"}`))
	f.Add(byte(8), "", []byte(`{"role":"auditor"}`))
	f.Add(byte(9), "", []byte(`{"public_key":"ssh-ed25519 AAAA","ports":[22]}`))
	f.Add(byte(10), "", []byte(`{"name":"kitchen-amp","public_key":"ssh-ed25519 AAAA","token":"phe_x"}`))
	f.Fuzz(func(t *testing.T, which byte, query string, body []byte) {
		rt := routes[int(which)%len(routes)]
		u := &url.URL{Path: rt.path, RawQuery: query}
		req, err := http.NewRequest(rt.method, u.String(), bytes.NewReader(body))
		if err != nil {
			return
		}
		req.RemoteAddr = "192.0.2.1:1234"
		req.Header.Set("Authorization", "Bearer "+fx.tokens["admin"])
		w := serveFuzz(t, req)
		var list []json.RawMessage
		if w.Code == http.StatusOK && json.Unmarshal(w.Body.Bytes(), &list) == nil && len(list) > maxAuditLimit {
			t.Fatalf("%s %s listed %d", rt.method, u, len(list))
		}
	})
}

// FuzzRecordingUpload: a device uploads two chunks of its session's
// recording, with any file names, offsets and bytes. Nothing but the
// recorder's file names ever reaches the session's directory; what the
// server holds of a file only grows, the bytes it held staying as they
// were (meta.json, sent whole, may be replaced); an upload it refuses
// changes nothing; one it takes is in the file where it said, with the
// size it answered, the size the store records.
func FuzzRecordingUpload(f *testing.F) {
	fl := fx.newFleet(f)
	d, key := newKeyedDevice(f, fl)
	f.Add("meta.json", "", []byte(`{"session":"s"}`), "meta.json", "0", []byte(`{"x":1}`))
	f.Add("events.jsonl", "0", []byte("{}\n"), "events.jsonl", "2", []byte("}\n{}\n"))
	f.Add("0001-pty.cast", "0", []byte("abc"), "0001-pty.cast", "1", []byte("bX"))
	f.Add("0002-exec.cast", "0", []byte("abc"), "0002-exec.cast", "4", []byte("d"))
	f.Add("0000-pty.cast", "+0", []byte("a"), "../meta.json", "", []byte("{}"))
	f.Add("events.jsonl", "007", []byte("a"), "events.jsonl\x00", "9223372036854775807", []byte("a"))
	f.Add("meta.json", "1", []byte("not json"), "0001-pty.cast", "", []byte("a"))
	f.Fuzz(func(t *testing.T, name1, offset1 string, data1 []byte, name2, offset2 string, data2 []byte) {
		ses, err := fx.store.GetSession(context.Background(), fx.newSession(t, d).ID)
		must(t, err)
		dir := recordingDir(ses)
		held := map[string][]byte{}
		for _, up := range []struct {
			name, offset string
			data         []byte
		}{{name1, offset1, data1}, {name2, offset2, data2}} {
			files := "/api/v1/device/sessions/" + ses.ID + "/files/"
			u := &url.URL{Path: files + up.name, RawPath: files + url.PathEscape(up.name)}
			if up.offset != "" {
				u.RawQuery = "offset=" + url.QueryEscape(up.offset)
			}
			req, err := http.NewRequest("PUT", u.String(), bytes.NewReader(up.data))
			if err != nil {
				continue
			}
			req.Header.Set("Authorization", "Device "+d.FleetName+"/"+d.Name+" "+control.DevicePassword(key, d.FleetName, d.Name, time.Now()))
			w := serveFuzz(t, req)
			before := held[up.name]
			checkRecordingDir(t, dir, held)
			after := held[up.name]
			if w.Code != http.StatusOK {
				if !bytes.Equal(before, after) {
					t.Fatalf("refused upload (%d) of %q at %q changed it from %q to %q", w.Code, up.name, up.offset, before, after)
				}
				continue
			}
			var res apitype.UploadResult
			must(t, json.Unmarshal(w.Body.Bytes(), &res))
			if res.Size != int64(len(after)) {
				t.Fatalf("upload of %q at %q answered size %d; the file holds %d", up.name, up.offset, res.Size, len(after))
			}
			if up.name == recMetaFile {
				if !bytes.Equal(after, up.data) {
					t.Fatalf("meta.json %q taken, but the file holds %q", up.data, after)
				}
				continue
			}
			off, err := strconv.ParseInt(up.offset, 10, 64)
			if err != nil || off < 0 || off > int64(len(after))-int64(len(up.data)) || !bytes.Equal(after[off:off+int64(len(up.data))], up.data) {
				t.Fatalf("upload of %q at %q taken, but the file holds %q", up.data, up.offset, after)
			}
		}
		rec, err := fx.store.GetRecording(context.Background(), ses.ID)
		if errors.Is(err, store.ErrNotFound) {
			rec = &store.Recording{}
		} else {
			must(t, err)
		}
		sizes := map[string]int64{}
		for _, f := range rec.Files {
			sizes[f.Name] = f.Size
		}
		for name, b := range held {
			if sizes[name] != int64(len(b)) {
				t.Fatalf("the store says %s has %d bytes; the disk holds %d", name, sizes[name], len(b))
			}
		}
	})
}

// checkRecordingDir reads a session's recording directory into held,
// checking that it holds only the recorder's file names and that each
// file but meta.json starts with what held had of it.
func checkRecordingDir(t *testing.T, dir string, held map[string][]byte) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	must(t, err)
	for _, e := range ents {
		if !validRecordingName(e.Name()) || !e.Type().IsRegular() {
			t.Fatalf("the recording's directory holds %q (%v)", e.Name(), e.Type())
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		if e.Name() != recMetaFile && !bytes.HasPrefix(b, held[e.Name()]) {
			t.Fatalf("%s held %q and now %q", e.Name(), held[e.Name()], b)
		}
		held[e.Name()] = b
	}
}
