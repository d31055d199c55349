package systemtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-bff/gatehouse/apiauth"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

// The two layers together: the gateway signs X-Gatehouse-Assertion, and an
// API using apiauth verifies it against the gateway's jwks.json, reading
// the claims the route names and enforcing its own claim check.
func TestAssertionVerifiedByAPIAuth(t *testing.T) {
	e := newEnv(t)
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()),
		hostileop.WithUser("alice", map[string]any{"email": "alice@example.com", "groups": []string{"ops"}}))
	op.SetClock(e.clock.Now)

	verified := make(chan apiauth.Claims, 4)
	var handler http.Handler
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(api.Close)

	e.start(op.URL, func(c *config.Config) {
		c.Routes = append(c.Routes, config.Route{Prefix: "/orders/", Upstream: api.URL,
			Identity: config.Identity{Assertion: true, Headers: map[string]string{"X-User-Email": "email", "X-Groups": "groups"}}})
	})
	v, err := apiauth.New(apiauth.Config{
		Gateway:    e.publicURL,
		Audience:   api.URL,
		HTTPClient: e.srv.Client(),
		Now:        e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = v.Handler(apiauth.RequireClaim("groups", "ops")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiauth.FromContext(r.Context())
		verified <- c
		json.NewEncoder(w).Encode(map[string]string{"ok": "yes"})
	})))

	b := e.browser()
	b.login("/")
	if resp := b.api("GET", "/orders/1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /orders/1 through the gateway = %d, want 200 (apiauth accepted the assertion)", resp.StatusCode)
	}
	claims := <-verified
	if claims["sub"] != "alice" || claims["email"] != "alice@example.com" {
		t.Errorf("apiauth verified claims %v", claims)
	}

	// A browser calling the API directly with a forged assertion is refused.
	req, _ := http.NewRequest("GET", api.URL+"/orders/1", nil)
	req.Header.Set("X-Gatehouse-Assertion", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2ln")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged assertion straight to the API = %d, want 401", resp.StatusCode)
	}
}
