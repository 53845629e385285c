package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/porthole/porthole/apitype"
)

// The OpenAPI document is built from the route table when the server
// starts: paths and operations from the routes, schemas from the Go types
// of the handlers' signatures, read through their json tags.

// pathParamDocs describes every path wildcard the routes use; a route with
// an undescribed one fails New.
var pathParamDocs = map[string]string{
	"fleet": "the fleet's name",
	"id":    "the ID of the device, session, support request, token, enrollment token or passkey",
	"user":  "the user's ID or email",
}

var wildcardRE = regexp.MustCompile(`\{([a-z]+)\}`)

const schemaRef = "#/components/schemas/"

// openAPI builds the document for routes.
func openAPI(routes []route) ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}, types: map[string]reflect.Type{}}
	errSchema := g.schema(reflect.TypeFor[apitype.ErrorBody]())
	paths := map[string]map[string]any{}
	for i := range routes {
		rt := &routes[i]
		op, err := g.operation(rt, errSchema)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rt.pattern(), err)
		}
		if paths[rt.path] == nil {
			paths[rt.path] = map[string]any{}
		}
		paths[rt.path][strings.ToLower(rt.method)] = op
	}
	if g.err != nil {
		return nil, g.err
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Porthole API",
			"version": "v1",
			"description": "Porthole's HTTPS API. Authenticate with `Authorization: Bearer <token>` " +
				"(from POST /api/v1/login), or, in a browser, with the web console's session cookie " +
				"(from POST /api/v1/console/login). Errors are always {\"error\":{\"code\":...,\"message\":...}}. " +
				"A fleet or device you have no role in answers 404, exactly as a missing one.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.defs,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
				"console": map[string]any{"type": "apiKey", "in": "cookie", "name": apitype.ConsoleSessionCookie,
					"description": "the web console's session (POST /api/v1/console/login); a request other than GET or HEAD must also come from the console's origin " +
						"and carry the value of the " + apitype.ConsoleCSRFCookie + " cookie in the " + apitype.CSRFHeader + " header"},
				"owner": map[string]any{"type": "apiKey", "in": "header", "name": "Authorization",
					"description": "\"Owner <token>\": the token of an owner link (`porthole-agent status`), read-only and scoped to one device"},
				"device": map[string]any{"type": "apiKey", "in": "header", "name": "Authorization",
					"description": "\"Device <fleet>/<device> <credential>\": a credential the device signs with its enrolled key for this one request (method, request URI, the body's SHA-256 sent as Content-Digest, time, nonce), accepted once"},
			},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (g *schemaGen) operation(rt *route, errSchema any) (map[string]any, error) {
	op := map[string]any{
		"operationId":      operationID(rt),
		"summary":          rt.summary,
		"description":      "Who may call: " + rt.who() + ".",
		"x-porthole-roles": rt.who(),
	}
	var params []any
	for _, m := range wildcardRE.FindAllStringSubmatch(rt.path, -1) {
		doc, ok := pathParamDocs[m[1]]
		if !ok {
			return nil, fmt.Errorf("path wildcard {%s} has no entry in pathParamDocs", m[1])
		}
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "description": doc,
			"schema": map[string]any{"type": "string"}})
	}
	for _, q := range rt.query {
		schema := q.schema
		if schema == nil {
			schema = map[string]any{"type": "string"}
		}
		if q.repeated {
			// In a query, an array is the parameter repeated (style
			// form, explode).
			schema = map[string]any{"type": "array", "items": schema}
		}
		params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.doc, "schema": schema})
	}
	if params != nil {
		op["parameters"] = params
	}
	switch rt.access {
	case public:
		op["security"] = []any{}
	case deviceAuth:
		op["security"] = []any{map[string]any{"device": []any{}}}
	case ownerAuth:
		op["security"] = []any{map[string]any{"owner": []any{}}}
	default:
		op["security"] = []any{map[string]any{"bearer": []any{}}, map[string]any{"console": []any{}}}
	}
	responses := map[string]any{
		"default": map[string]any{"description": "an error, in words a person can act on", "content": jsonContent(errSchema)},
	}
	switch {
	case rt.ep.req != nil:
		op["requestBody"] = map[string]any{"required": true, "content": jsonContent(g.schema(rt.ep.req))}
	case rt.ep.body.request != "":
		// Bytes, maybe none: a media type without a schema.
		op["requestBody"] = map[string]any{"content": map[string]any{rt.ep.body.request: map[string]any{}}}
	}
	if rt.ep.raw != nil {
		for _, a := range rt.ep.body.answers {
			responses[strconv.Itoa(a.status)] = g.rawAnswer(a)
		}
	} else {
		ok := map[string]any{"description": http.StatusText(rt.successStatus())}
		if rt.ep.resp != nil {
			ok["content"] = jsonContent(g.schema(rt.ep.resp))
		}
		responses[strconv.Itoa(rt.successStatus())] = ok
	}
	op["responses"] = responses
	return op, nil
}

// who says who may call a route, for the document.
func (rt *route) who() string {
	switch rt.access {
	case public:
		return "anyone, without a token"
	case loggedIn:
		return "any logged-in user"
	case adminOnly:
		return "administrators"
	case deviceAuth:
		return "an enrolled device, for itself"
	case ownerAuth:
		return "a device's owner, with the read-only token of an owner link, for that device only"
	}
	return whoMay(rt.role) + " (administrators count as owners of every fleet)"
}

// operationID makes "getFleetsFleetMembers" of "GET /api/v1/fleets/{fleet}/members".
func operationID(rt *route) string {
	id := strings.ToLower(rt.method)
	for _, seg := range strings.Split(strings.TrimPrefix(rt.path, "/api/v1"), "/") {
		seg = strings.Trim(seg, "{}")
		for _, word := range strings.FieldsFunc(seg, func(r rune) bool { return r == '-' || r == '.' }) {
			id += strings.ToUpper(word[:1]) + word[1:]
		}
	}
	if strings.HasSuffix(rt.path, "/") {
		// A page ("/owner/") beside the API route of the same name
		// ("/api/v1/owner").
		id += "Page"
	}
	return id
}

func jsonContent(schema any) map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": schema}}
}

// rawAnswer is the document's response object for a raw endpoint's answer.
func (g *schemaGen) rawAnswer(a rawAnswer) map[string]any {
	about := a.about
	if about == "" {
		about = http.StatusText(a.status)
	}
	resp := map[string]any{"description": about}
	if len(a.json) > 0 {
		var schemas []any
		for _, t := range a.json {
			schemas = append(schemas, g.schema(t))
		}
		if len(schemas) == 1 {
			resp["content"] = jsonContent(schemas[0])
		} else {
			resp["content"] = jsonContent(map[string]any{"oneOf": schemas})
		}
		return resp
	}
	content := map[string]any{}
	for _, ct := range a.types {
		media := map[string]any{}
		switch {
		case a.bytes:
		case ct == "application/json":
			media["schema"] = map[string]any{"type": "object"}
		default:
			media["schema"] = map[string]any{"type": "string"}
		}
		content[ct] = media
	}
	resp["content"] = content
	return resp
}

// schemaGen turns Go types into JSON Schemas (OpenAPI 3.1 uses JSON Schema
// 2020-12). Named structs become components, referenced by $ref.
type schemaGen struct {
	defs  map[string]any
	types map[string]reflect.Type // component name -> the type it was made from
	err   error
}

func (g *schemaGen) fail(format string, args ...any) map[string]any {
	if g.err == nil {
		g.err = fmt.Errorf(format, args...)
	}
	return map[string]any{}
}

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	if t == reflect.TypeFor[time.Time]() {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.schema(t.Elem())
		if t.Elem().Kind() == reflect.Slice {
			// A pointer to a list tells null (none named) from [] (none
			// allowed): FleetPolicy's ports.
			s["type"] = []any{"array", "null"}
		}
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return map[string]any{"type": "integer"}
	case reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return g.fail("openapi: map key of %v is not a string", t)
		}
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return g.structSchema(t)
		}
		if prev, ok := g.types[t.Name()]; ok {
			if prev != t {
				return g.fail("openapi: two types named %s (%v and %v)", t.Name(), prev, t)
			}
		} else {
			g.types[t.Name()] = t
			g.defs[t.Name()] = g.structSchema(t)
		}
		return map[string]any{"$ref": schemaRef + t.Name()}
	}
	return g.fail("openapi: no schema for %v", t)
}

// structSchema lists a struct's JSON fields; those without omitempty or
// omitzero are required.
func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []string{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			required = append(required, name)
		}
	}
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

// serveOpenAPI serves the document built by New.
func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.openapi)
}
