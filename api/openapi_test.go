package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// strictOpenAPI are kin-openapi's strictest checks: a format it does not
// know, a default or example its schema refuses and an extension beside a
// $ref are errors too, and every problem is reported, not only the first.
var strictOpenAPI = []openapi3.ValidationOption{
	openapi3.EnableSchemaFormatValidation(),
	openapi3.EnableSchemaPatternValidation(),
	openapi3.EnableSchemaDefaultsValidation(),
	openapi3.EnableExamplesValidation(),
	openapi3.ProhibitExtensionsWithRef(),
	openapi3.EnableMultiError(),
}

// loadOpenAPI is the document the server serves, as kin-openapi loads it:
// a copy of its own for each test, as validating it may change it.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(fx.srv.openapi)
	if err != nil {
		t.Fatalf("kin-openapi cannot load the document: %v", err)
	}
	return doc
}

// TestOpenAPIValidator runs a standard validator, kin-openapi's, over the
// document, in its own words.
func TestOpenAPIValidator(t *testing.T) {
	t.Parallel()
	r := do(t, fx.ts, "GET", "/api/v1/openapi.json", "", nil)
	if string(r.body) != string(fx.srv.openapi) {
		t.Fatal("GET /api/v1/openapi.json does not answer the document the server built")
	}
	doc := loadOpenAPI(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("kin-openapi reads the document as OpenAPI %s; want 3.1", doc.OpenAPI)
	}
	err := doc.Validate(t.Context(), strictOpenAPI...)
	if me := (openapi3.MultiError{}); errors.As(err, &me) {
		for _, e := range me {
			t.Errorf("kin-openapi: %v", e)
		}
	} else if err != nil {
		t.Errorf("kin-openapi: %v", err)
	}
}

// TestOpenAPI fetches the document and checks it against what the server
// really routes: every documented operation answers from a handler (not
// the fallback's 404 or 405), and every route is documented.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	r := do(t, fx.ts, "GET", "/api/v1/openapi.json", "", nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", r.status, r.header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Info       map[string]any                        `json:"info"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Info["title"] == nil || doc.Info["version"] == nil || len(doc.Paths) == 0 || len(doc.Components.Schemas) == 0 {
		t.Fatalf("document head: openapi %q, info %v, %d paths, %d schemas", doc.OpenAPI, doc.Info, len(doc.Paths), len(doc.Components.Schemas))
	}
	// Unique operationIds (openapi-spec-validator once refused the
	// document when /owner/ and /api/v1/owner shared getOwner) and $refs
	// that resolve are TestOpenAPIValidator's: kin-openapi checks both.

	// A token of its own: POST /api/v1/logout revokes the one it is called
	// with, and other tests use the fixture's.
	admin, _, err := newToken(fx.store, fx.users["admin"], time.Now().Add(time.Hour))
	must(t, err)
	documented := map[string]bool{}
	wildcard := regexp.MustCompile(`\{[a-z]+\}`)
	for path, ops := range doc.Paths {
		for method := range ops {
			pattern := strings.ToUpper(method) + " " + path
			documented[pattern] = true
			t.Run(pattern, func(t *testing.T) {
				t.Parallel()
				var body any
				if method == "post" || method == "put" {
					body = "{}"
				}
				url := wildcard.ReplaceAllString(path, "x")
				r := do(t, fx.ts, strings.ToUpper(method), url, admin, body)
				if r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed {
					if msg := r.errorBody(t).Message; strings.HasPrefix(msg, noRouteMessage) || strings.HasPrefix(msg, noRoutePath) {
						t.Errorf("%s %s is documented but not routed: %d %s", method, url, r.status, msg)
					}
				}
			})
		}
	}
	for _, rt := range fx.srv.routes {
		if !documented[rt.pattern()] {
			t.Errorf("route %s is not in the document", rt.pattern())
		}
	}
	if len(documented) != len(fx.srv.routes) {
		t.Errorf("%d operations documented; %d routes", len(documented), len(fx.srv.routes))
	}
}

// TestFallback: unknown paths and wrong methods answer in the API's error
// form too.
func TestFallback(t *testing.T) {
	t.Parallel()
	e := do(t, fx.ts, "GET", "/api/v1/nothing-here", fx.tokens["admin"], nil).wantError(t, http.StatusNotFound, "not_found")
	if !strings.HasPrefix(e.Message, noRouteMessage) {
		t.Errorf("message = %q", e.Message)
	}
	r := do(t, fx.ts, "PATCH", "/api/v1/fleets/acme/members/x", fx.tokens["admin"], "{}")
	e = r.wantError(t, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := r.header.Get("Allow"); got != "PUT, DELETE" {
		t.Errorf("Allow = %q; want PUT, DELETE (message %q)", got, e.Message)
	}
}
