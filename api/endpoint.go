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
// OpenAPI document reads by reflection; raw ones answer by themselves.
type endpoint struct {
	req, resp   reflect.Type // nil: no JSON body
	serve       func(*call) (any, error)
	raw         http.Handler
	contentType string // raw endpoints: what they answer
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
	return endpoint{raw: h, contentType: contentType}
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
}
