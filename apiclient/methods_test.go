package apiclient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/porthole/porthole/apitype"
)

// TestMethods checks each call's method, escaped path, query and body
// against what the server's routes expect.
func TestMethods(t *testing.T) {
	type seen struct{ method, path, query, body, auth string }
	got := make(chan seen, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, strings.TrimSpace(string(b)), r.Header.Get("Authorization")}
		w.Write([]byte("null")) // decodes into any answer, list or object
	}))
	defer ts.Close()
	c, err := New(ts.URL, Options{Token: "pht_x"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		call func() error
		want seen
	}{
		{"login", func() error {
			_, err := c.Login(ctx, apitype.LoginRequest{Email: "a@b", Password: "p", TOTP: "1"})
			return err
		}, seen{method: "POST", path: "/api/v1/login", body: `{"email":"a@b","password":"p","totp":"1"}`}},
		{"logout", func() error { return c.Logout(ctx) }, seen{method: "POST", path: "/api/v1/logout"}},
		{"me", func() error { _, err := c.Me(ctx); return err }, seen{method: "GET", path: "/api/v1/me"}},
		{"tokens", func() error { _, err := c.Tokens(ctx); return err }, seen{method: "GET", path: "/api/v1/tokens"}},
		{"revoke token", func() error { return c.RevokeToken(ctx, "t/1") }, seen{method: "DELETE", path: "/api/v1/tokens/t%2F1"}},
		{"fleets", func() error { _, err := c.Fleets(ctx); return err }, seen{method: "GET", path: "/api/v1/fleets"}},
		{"fleet", func() error { _, err := c.Fleet(ctx, "acme"); return err }, seen{method: "GET", path: "/api/v1/fleets/acme"}},
		{"create fleet", func() error { _, err := c.CreateFleet(ctx, "acme"); return err },
			seen{method: "POST", path: "/api/v1/fleets", body: `{"name":"acme"}`}},
		{"members", func() error { _, err := c.Members(ctx, "acme"); return err }, seen{method: "GET", path: "/api/v1/fleets/acme/members"}},
		{"set member", func() error { return c.SetMember(ctx, "acme", "bob@example.com", "operator") },
			seen{method: "PUT", path: "/api/v1/fleets/acme/members/bob@example.com", body: `{"role":"operator"}`}},
		{"remove member", func() error { return c.RemoveMember(ctx, "acme", "x?y") },
			seen{method: "DELETE", path: "/api/v1/fleets/acme/members/x%3Fy"}},
		{"users", func() error { _, err := c.Users(ctx); return err }, seen{method: "GET", path: "/api/v1/users"}},
		{"create user", func() error {
			_, err := c.CreateUser(ctx, apitype.CreateUserRequest{Email: "bob@example.com", Admin: true})
			return err
		}, seen{method: "POST", path: "/api/v1/users", body: `{"email":"bob@example.com","admin":true}`}},
		{"delete user", func() error { return c.DeleteUser(ctx, "bob@example.com") },
			seen{method: "DELETE", path: "/api/v1/users/bob@example.com"}},
		{"reset user", func() error { _, err := c.ResetUser(ctx, "x/y", ""); return err },
			seen{method: "POST", path: "/api/v1/users/x%2Fy/reset", body: `{}`}},
		{"enrollment tokens", func() error { _, err := c.EnrollmentTokens(ctx, "acme"); return err },
			seen{method: "GET", path: "/api/v1/fleets/acme/enrollment-tokens"}},
		{"create enrollment token", func() error {
			_, err := c.CreateEnrollmentToken(ctx, "acme", apitype.CreateEnrollmentTokenRequest{Uses: 2, TTLSeconds: 60})
			return err
		}, seen{method: "POST", path: "/api/v1/fleets/acme/enrollment-tokens", body: `{"uses":2,"ttl_s":60}`}},
		{"delete enrollment token", func() error { return c.DeleteEnrollmentToken(ctx, "acme", "e1") },
			seen{method: "DELETE", path: "/api/v1/fleets/acme/enrollment-tokens/e1"}},
		{"devices", func() error { _, err := c.Devices(ctx, DeviceFilter{}); return err }, seen{method: "GET", path: "/api/v1/devices"}},
		{"devices filtered", func() error { _, err := c.Devices(ctx, DeviceFilter{Fleet: "acme", Name: "dev 1"}); return err },
			seen{method: "GET", path: "/api/v1/devices", query: "fleet=acme&name=dev+1"}},
		{"device", func() error { _, err := c.Device(ctx, ".."); return err }, seen{method: "GET", path: "/api/v1/devices/%2E%2E"}},
		{"set labels", func() error { return c.SetLabels(ctx, "d1", nil) },
			seen{method: "PUT", path: "/api/v1/devices/d1/labels", body: `{"labels":{}}`}},
		{"delete device", func() error { return c.DeleteDevice(ctx, "d1") }, seen{method: "DELETE", path: "/api/v1/devices/d1"}},
		{"fleet policy", func() error { _, err := c.FleetPolicy(ctx, "acme"); return err }, seen{method: "GET", path: "/api/v1/fleets/acme/policy"}},
		{"set fleet policy", func() error {
			v, none := int64(3), []int{}
			_, err := c.SetFleetPolicy(ctx, "acme", apitype.SetFleetPolicyRequest{Ports: &none, FourEyes: true, Version: &v})
			return err
		}, seen{method: "PUT", path: "/api/v1/fleets/acme/policy", body: `{"ports":[],"four_eyes":true,"version":3}`}},
		{"set fleet policy naming no ports", func() error {
			_, err := c.SetFleetPolicy(ctx, "acme", apitype.SetFleetPolicyRequest{ConsentFloor: "manual"})
			return err
		}, seen{method: "PUT", path: "/api/v1/fleets/acme/policy", body: `{"consent_floor":"manual"}`}},
		{"approve request", func() error { _, err := c.ApproveRequest(ctx, "req_1"); return err },
			seen{method: "POST", path: "/api/v1/requests/req_1/approve"}},
		{"deny request", func() error { _, err := c.DenyRequest(ctx, "req_1"); return err },
			seen{method: "POST", path: "/api/v1/requests/req_1/deny"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			s := <-got
			tt.want.auth = "Bearer pht_x"
			if s != tt.want {
				t.Errorf("sent %+v; want %+v", s, tt.want)
			}
		})
	}
}

// TestListNeverNil: a list answered with null or [] is an empty slice, so
// it prints as [] in JSON.
func TestListNeverNil(t *testing.T) {
	for _, body := range []string{"null", "[]"} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(body)) }))
		c, err := New(ts.URL, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Fleets(context.Background())
		ts.Close()
		if err != nil || got == nil {
			t.Errorf("Fleets with %s = %#v, %v; want an empty slice", body, got, err)
		}
	}
}

func TestPathSegment(t *testing.T) {
	for in, want := range map[string]string{
		"acme": "acme", "bob@example.com": "bob@example.com", "a/b": "a%2Fb", "a?b": "a%3Fb",
		".": "%2E", "..": "%2E%2E", "...": "...", "a b": "a%20b", "%": "%25",
	} {
		if got := PathSegment(in); got != want {
			t.Errorf("PathSegment(%q) = %q; want %q", in, got, want)
		}
	}
}
