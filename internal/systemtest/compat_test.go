package systemtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

// These tests pin the parts of Duende BFF's wire behaviour that
// docs/compat.md lists and no other test proves.

// TestUserEndpointSlideFalseDoesNotExtend: /bff/user?slide=false reads the
// session without extending it; a plain /bff/user extends it.
func TestUserEndpointSlideFalseDoesNotExtend(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	op.SetClock(e.clock.Now)
	b := e.browser()
	b.login("/")
	e.clock.Advance(10 * time.Minute)
	expiresIn := func(path string) float64 {
		t.Helper()
		resp := b.api("GET", path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s = %d", path, resp.StatusCode)
		}
		var claims []struct {
			Type  string `json:"type"`
			Value any    `json:"value"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&claims); err != nil {
			t.Fatal(err)
		}
		for _, c := range claims {
			if c.Type == "bff:session_expires_in" {
				n, _ := c.Value.(float64)
				return n
			}
		}
		t.Fatalf("%s has no bff:session_expires_in", path)
		return 0
	}
	// The default idle timeout is 30 minutes.
	if n := expiresIn("/bff/user?slide=false"); n != 20*60 {
		t.Errorf("slide=false after 10 minutes: bff:session_expires_in = %v, want 1200", n)
	}
	if n := expiresIn("/bff/user?slide=false"); n != 20*60 {
		t.Errorf("slide=false again: bff:session_expires_in = %v, want 1200 (not extended)", n)
	}
	if n := expiresIn("/bff/user"); n != 30*60 {
		t.Errorf("plain /bff/user: bff:session_expires_in = %v, want 1800 (extended)", n)
	}
}

// TestUserEndpointClaimsArray: the answer is a JSON array of {type, value};
// a multi-valued claim is one entry per value; bff.user_claims limits the
// claims (the bff:* entries stay).
func TestUserEndpointClaimsArray(t *testing.T) {
	e := newEnv(t)
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()),
		hostileop.WithUser("user-1", map[string]any{"email": "u1@example.com", "role": []string{"reader", "writer"}}))
	e.start(op.URL, func(c *config.Config) { c.BFF.UserClaims = []string{"sub", "role"} })
	b := e.browser()
	b.login("/")
	resp := b.api("GET", "/bff/user")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user = %d", resp.StatusCode)
	}
	var claims []struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&claims); err != nil {
		t.Fatalf("/bff/user is not an array of {type, value}: %v", err)
	}
	count := map[string]int{}
	var roles []any
	for _, c := range claims {
		count[c.Type]++
		if c.Type == "role" {
			roles = append(roles, c.Value)
		}
	}
	if count["sub"] != 1 || count["email"] != 0 || len(roles) != 2 || roles[0] != "reader" || roles[1] != "writer" {
		t.Errorf("claims = %+v, want sub once, role once per value, no email", claims)
	}
	if count["bff:logout_url"] != 1 || count["bff:session_expires_in"] != 1 {
		t.Errorf("claims = %+v, want the bff:* entries despite user_claims", claims)
	}
}

// TestConfiguredPrefixAndAntiForgeryHeader: bff.prefix moves every session
// endpoint, and bff.csrf_header / csrf_value replace X-CSRF: 1 on the user
// endpoint and on API routes.
func TestConfiguredPrefixAndAntiForgeryHeader(t *testing.T) {
	e := newEnv(t)
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.publicURL+"/auth/callback"))
	e.start(op.URL, func(c *config.Config) {
		c.BFF.Prefix = "/auth"
		c.BFF.CSRFHeader, c.BFF.CSRFValue = "X-Requested-With", "XMLHttpRequest"
	})
	b := e.browser()
	if resp := b.do("GET", "/auth/login?returnUrl=%2F", nil, true); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("login under /auth ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	custom := map[string]string{"X-Requested-With": "XMLHttpRequest"}
	resp := b.do("GET", "/auth/user", custom, false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/auth/user with the configured header = %d", resp.StatusCode)
	}
	var claims []struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	json.NewDecoder(resp.Body).Decode(&claims)
	for _, c := range claims {
		if c.Type == "bff:logout_url" {
			if lu, _ := c.Value.(string); !strings.HasPrefix(lu, "/auth/logout?sid=") {
				t.Errorf("bff:logout_url = %q, want it under /auth", lu)
			}
		}
	}
	if resp := b.do("GET", "/auth/user", map[string]string{"X-CSRF": "1"}, false); resp.StatusCode != http.StatusForbidden {
		t.Errorf("/auth/user with X-CSRF: 1 instead of the configured header = %d, want 403", resp.StatusCode)
	}
	if resp := b.do("GET", "/api/x", custom, false); resp.StatusCode != http.StatusOK {
		t.Errorf("API call with the configured header = %d, want 200", resp.StatusCode)
	}
	if resp := b.do("GET", "/api/x", map[string]string{"X-CSRF": "1"}, false); resp.StatusCode != http.StatusForbidden {
		t.Errorf("API call with X-CSRF: 1 instead of the configured header = %d, want 403", resp.StatusCode)
	}
}

// TestLoginWithoutReturnURLReturnsToRoot: /bff/login without returnUrl
// comes back to "/", as Duende BFF's does.
func TestLoginWithoutReturnURLReturnsToRoot(t *testing.T) {
	e, _ := startWithHostileProvider(t, nil)
	b := e.browser()
	resp := b.do("GET", "/bff/login", nil, true)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" || resp.Request.URL.RawQuery != "" {
		t.Errorf("login without returnUrl ended at %s with %d, want /", resp.Request.URL, resp.StatusCode)
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Errorf("/bff/user after login = %d", status)
	}
}

// TestNoSilentLoginCallbackEndpoint: Gatehouse has no separate
// /bff/silent-login-callback; a silent login comes back on /bff/callback.
// The path answers 404 JSON, not the frontend.
func TestNoSilentLoginCallbackEndpoint(t *testing.T) {
	e, _ := startWithHostileProvider(t, nil)
	resp := e.browser().do("GET", "/bff/silent-login-callback", nil, false)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("/bff/silent-login-callback = %d %q, want 404 JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
