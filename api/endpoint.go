package api

import (
	"context"
	"net/http"
	"reflect"

	"github.com/porthole/porthole/store"
)

// none stands for "no request body" or "no response body" in a handler's
// signature.
type none struct{}

// endpoint is what a route runs. JSON endpoints take and give Go types the
// OpenAPI document reads by reflection; raw ones read and answer by
// themselves, and say in body what for the document.
type endpoint struct {
	req, resp reflect.Type // nil: no JSON body
	serve     func(*call) (any, error)
	raw       http.Handler
	body      rawBody
}

// rawBody is what a raw endpoint reads and answers, which no Go signature
// carries: the document says it.
type rawBody struct {
	request string      // the content type of the request body it reads as bytes; "": none
	answers []rawAnswer // its answers, errors aside (those are apitype.ErrorBody)
}

// rawAnswer is one answer of a raw endpoint: JSON of one of some Go types,
// or else a body of one of some content types.
type rawAnswer struct {
	status int
	about  string         // what it is, for the document; "": the status's text
	json   []reflect.Type // JSON of one of these types
	types  []string       // or a body of one of these content types:
	bytes  bool           // any bytes (else a string if text/*, an object if JSON)
}

// handle makes a JSON endpoint of fn. The request and response types in the
// document come from fn's own signature, so they cannot drift from it; a
// Req of none means the route takes no body, a Resp of none that it answers
// no body.
func handle[Req, Resp any](fn func(*call, *Req) (Resp, error)) endpoint {
	ep := endpoint{req: bodyType[Req](), resp: bodyType[Resp]()}
	ep.serve = func(c *call) (any, error) {
		var req Req
		if ep.req != nil {
			if err := decodeBody(c.w, c.r, c.s.maxBody, &req); err != nil {
				return nil, err
			}
		}
		return fn(c, &req)
	}
	return ep
}

// raw makes an endpoint of a plain handler answering contentType.
func raw(contentType string, h http.Handler) endpoint {
	return endpoint{raw: h, body: rawBody{answers: []rawAnswer{{status: http.StatusOK, types: []string{contentType}}}}}
}

func bodyType[T any]() reflect.Type {
	t := reflect.TypeFor[T]()
	if t == reflect.TypeFor[none]() {
		return nil
	}
	return t
}

// call is one request to a JSON endpoint.
type call struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	route *route
	user  *store.User   // the caller; nil on public routes
	token *store.Token  // the token the caller authenticated with
	dev   *store.Device // the calling device, on deviceAuth routes
	// viaCookie: the caller authenticated with the web console's session
	// cookie, not a bearer token.
	viaCookie bool
	// passkeyID is the passkey a sign-in on this call was made with
	// (checkPasskeySignIn), which the login's token records.
	passkeyID string
}
