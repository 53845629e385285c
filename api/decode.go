package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/porthole/porthole/apitype"
)

// decodeBody reads the request's JSON body into dst: at most maxBody bytes,
// no unknown fields, exactly one JSON value. Every handler's body goes
// through here, so every route refuses bad input the same way.
func decodeBody(w http.ResponseWriter, r *http.Request, maxBody int64, dst any) error {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, maxBody)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err, maxBody)
		}
		return badRequest("the request body holds more than one JSON value; send exactly one object")
	}
	return nil
}

// decodeError turns a json.Decoder error into a sentence about the body.
func decodeError(err error, maxBody int64) error {
	var (
		tooBig  *http.MaxBytesError
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	var he *httpError
	switch {
	case errors.As(err, &he): // the body's reader answered it (a body not the one signed)
		return he
	case errors.As(err, &tooBig):
		return errorf(http.StatusRequestEntityTooLarge, apitype.CodeTooLarge,
			"the request body is over %s", byteSize(maxBody))
	case errors.Is(err, io.EOF):
		return badRequest("the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the request body is not valid JSON: it ends too early")
	case errors.As(err, &syntax):
		return badRequest("the request body is not valid JSON: %s at byte %d", syntax.Error(), syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest("the request body must be a JSON object, not %s", typeErr.Value)
		}
		return badRequest("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	// encoding/json reports unknown fields only as text.
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badRequest("the request body has an unknown field %s; check the spelling (fields are snake_case)", field)
	}
	return badRequest("the request body could not be read: %v", err)
}

// jsonKind names a Go kind the way a JSON user thinks of it.
func jsonKind(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case kind == "map", kind == "struct":
		return "an object"
	case kind == "slice":
		return "an array"
	}
	return "a " + kind
}

func byteSize(n int64) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d bytes", n)
}
