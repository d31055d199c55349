package systemtest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/bff"
)

// TestDiagnosticsOffByDefault: without bff.diagnostics the endpoint does
// not exist, for a signed-in loopback caller with the anti-forgery header.
func TestDiagnosticsOffByDefault(t *testing.T) {
	e, _ := startWithHostileProvider(t, nil)
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login = %d", resp.StatusCode)
	}
	resp := b.api("GET", "/bff/diagnostics")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/bff/diagnostics = %d, want 404 with bff.diagnostics off", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), "claims") || strings.Contains(string(body), testClientID) {
		t.Errorf("the 404 shows diagnostics: %s", body)
	}
}

// TestDiagnosticsShowNoTokenOrSecret signs in at the hostile provider with
// DPoP, calls a user route (refreshing on every call) and a client route,
// then reads the diagnostics: they describe the session's tokens, the
// routes and the provider, and no token the provider issued, no PKCE code
// verifier, no client secret and no cookie value appears in them.
func TestDiagnosticsShowNoTokenOrSecret(t *testing.T) {
	e, op := startWithHostileProvider(t, func(c *config.Config) {
		c.BFF.Diagnostics = true
		// The harness's API upstream, under a path: the table shows its origin.
		up := c.Routes[0].Upstream
		c.Routes = append(c.Routes, config.Route{Prefix: "/reports/", Upstream: up + "/base", Token: config.TokenClient, Audience: "reports"})
	})
	op.SetClock(e.clock.Now)
	// Access tokens live 30s, under the 60s refresh skew: every API call
	// refreshes, so rotated tokens are among those searched for.
	op.SetAccessTokenTTL(30 * time.Second)
	op.SetDPoP(true)
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login = %d\n%s", resp.StatusCode, e.logs.String())
	}
	for _, p := range []string{"/api/a", "/api/b", "/reports/1"} {
		if resp := b.api("GET", p); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s = %d\n%s", p, resp.StatusCode, e.logs.String())
		}
	}

	resp := b.api("GET", "/bff/diagnostics")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/diagnostics = %d: %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}

	secrets := append(e.spy.Values(), testClientSecret)
	if c := b.cookie("__Host-gatehouse"); c != nil {
		secrets = append(secrets, c.Value)
	} else {
		t.Fatal("no session cookie")
	}
	// Access, refresh and ID tokens from the code grant, two refreshes,
	// the client token and the code verifier at least.
	if len(secrets) < 8 {
		t.Fatalf("the spy saw only %d values; the scan would prove little", len(secrets))
	}
	out := string(body)
	for _, s := range secrets {
		if len(s) < 8 {
			continue
		}
		if i := strings.Index(out, s); i >= 0 {
			t.Errorf("the diagnostics show a token or secret %.12s… in %q", s, out[max(0, i-200):min(len(out), i+len(s)+50)])
		}
	}

	var d bff.Diagnostics
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("body: %v\n%s", err, body)
	}
	if d.Session == nil || d.Session.Subject == "" || d.Session.Claims["sub"] != d.Session.Subject {
		t.Fatalf("session = %+v", d.Session)
	}
	at := d.Session.Tokens.AccessToken
	if !at.Present || at.TokenType != "DPoP" || !at.SenderConstrained || at.ExpiresIn == nil || at.Scope == "" {
		t.Errorf("access token metadata = %+v, want a DPoP-bound token with expiry and scope", at)
	}
	if !d.Session.Tokens.HasRefreshToken || !d.Session.Tokens.HasIDToken {
		t.Errorf("tokens = %+v", d.Session.Tokens)
	}
	if len(d.Routes) != 2 || d.Routes[0].Token != config.TokenUser || d.Routes[1].Token != config.TokenClient ||
		d.Routes[1].Upstream != e.api.URL || d.Routes[1].Audience != "reports" {
		t.Errorf("routes = %+v", d.Routes)
	}
	p := d.Provider
	if p.Error != "" || p.Issuer != op.URL || p.ClientID != testClientID || !p.DPoP || !p.Endpoints["token"] || len(p.AcceptedSigningAlgs) == 0 {
		t.Errorf("provider = %+v", p)
	}
	if strings.Contains(e.logs.String(), "diagnostics refused") {
		t.Error("a loopback caller was refused")
	}
}
