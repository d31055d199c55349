package bff_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/bff"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

var diagRoutes = []config.Route{
	{Prefix: "/api/", Upstream: "http://user:upstream-password@127.0.0.1:9001/base?k=v", Token: config.TokenUser},
	{Prefix: "/reports/", Upstream: "https://reports.example", Token: config.TokenClient, Audience: "reports", Methods: []string{"GET"}},
}

func (f *fixture) diagnostics(remote, id string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/bff/diagnostics", nil)
	r.RemoteAddr = remote
	if id != "" {
		r.AddCookie(&http.Cookie{Name: cookie, Value: id})
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.Diagnostics(diagRoutes).ServeHTTP(w, r)
	return w
}

func TestDiagnosticsRefusedOffLoopback(t *testing.T) {
	f := newFixture(t)
	id, _ := f.login("alice", "sid-1", "Firefox")
	csrf := map[string]string{"X-CSRF": "1"}
	tests := []struct {
		name   string
		remote string
		header map[string]string
	}{
		{"documentation address", "192.0.2.1:1234", csrf},
		{"private address", "10.0.0.7:443", csrf},
		{"IPv4-mapped non-loopback", "[::ffff:192.0.2.1]:1234", csrf},
		{"unparsable peer", "localhost:1234", csrf},
		{"loopback peer relayed by a proxy (X-Forwarded-For)", "127.0.0.1:1234", map[string]string{"X-CSRF": "1", "X-Forwarded-For": "192.0.2.1"}},
		{"loopback peer relayed by a proxy (X-Forwarded-For claiming loopback)", "127.0.0.1:1234", map[string]string{"X-CSRF": "1", "X-Forwarded-For": "127.0.0.1"}},
		{"loopback peer relayed by a proxy (Forwarded)", "[::1]:1234", map[string]string{"X-CSRF": "1", "Forwarded": "for=192.0.2.1"}},
		{"non-loopback peer claiming loopback", "192.0.2.1:1234", map[string]string{"X-CSRF": "1", "X-Forwarded-For": "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.diagnostics(tt.remote, id, tt.header)
			if w.Code != http.StatusForbidden {
				t.Fatalf("status = %d, want 403: %s", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error != "access_denied" {
				t.Errorf("body = %s, want error access_denied", w.Body)
			}
			if strings.Contains(w.Body.String(), "alice") {
				t.Errorf("the refusal shows session data: %s", w.Body)
			}
		})
	}
	for _, remote := range []string{"127.0.0.1:1234", "[::1]:1234", "127.0.0.2:80", "[::ffff:127.0.0.1]:1234"} {
		if w := f.diagnostics(remote, id, csrf); w.Code != http.StatusOK {
			t.Errorf("from %s: status = %d, want 200: %s", remote, w.Code, w.Body)
		}
	}
}

func TestDiagnosticsRefusals(t *testing.T) {
	f := newFixture(t)
	id, _ := f.login("alice", "sid-1", "Firefox")
	if w := f.diagnostics("127.0.0.1:1", id, nil); w.Code != http.StatusForbidden {
		t.Errorf("without the anti-forgery header: status = %d, want 403", w.Code)
	}
	r := httptest.NewRequest("POST", "/bff/diagnostics", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-CSRF", "1")
	w := httptest.NewRecorder()
	f.h.Diagnostics(diagRoutes).ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET" {
		t.Errorf("POST: status = %d Allow %q, want 405 Allow GET", w.Code, w.Header().Get("Allow"))
	}
}

func TestDiagnosticsShowsMetadataOnly(t *testing.T) {
	f := newFixture(t)
	expiry := f.clock.Now().Add(5 * time.Minute)
	dpopKey := []byte("pkcs8-private-key-bytes-of-the-session")
	s := &session.Session{Issuer: issuer, Subject: "alice", SID: "sid-1", SessionState: "state-1",
		Claims: map[string]any{"sub": "alice", "email": "alice@example.com"},
		Tokens: session.Tokens{AccessToken: "access-token-value", TokenType: "DPoP", RefreshToken: "refresh-token-value",
			IDToken: "id-token-value", Expiry: expiry, Scope: "openid profile offline_access"},
		DPoPKey: dpopKey}
	id, err := f.m.Create(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	created := f.clock.Now()
	f.clock.Advance(time.Minute)
	w := f.diagnostics("127.0.0.1:1", id, map[string]string{"X-CSRF": "1"})
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	body := w.Body.String()
	for _, secret := range []string{"access-token-value", "refresh-token-value", "id-token-value", id, string(dpopKey),
		base64.StdEncoding.EncodeToString(dpopKey), "upstream-password", "user:"} {
		if strings.Contains(body, secret) {
			t.Errorf("diagnostics show %q: %s", secret, body)
		}
	}
	var d bff.Diagnostics
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Session == nil {
		t.Fatalf("no session in %s", body)
	}
	if d.Session.Subject != "alice" || d.Session.Claims["email"] != "alice@example.com" || d.Session.SID != "sid-1" || d.Session.Handle != s.Handle {
		t.Errorf("session = %+v", d.Session)
	}
	at := d.Session.Tokens.AccessToken
	if !at.Present || at.TokenType != "DPoP" || !at.SenderConstrained || at.Scope != "openid profile offline_access" {
		t.Errorf("access token = %+v", at)
	}
	if at.ExpiresAt == nil || !at.ExpiresAt.Equal(expiry) || at.ExpiresIn == nil || *at.ExpiresIn != 240 {
		t.Errorf("access token expiry = %v in %v, want %v in 240s", at.ExpiresAt, at.ExpiresIn, expiry)
	}
	if !d.Session.Tokens.HasRefreshToken || !d.Session.Tokens.HasIDToken {
		t.Errorf("tokens = %+v, want refresh and ID token present", d.Session.Tokens)
	}
	want := []bff.RouteDiagnostics{
		{Prefix: "/api/", Upstream: "http://127.0.0.1:9001", Token: config.TokenUser, Methods: []string{}},
		{Prefix: "/reports/", Upstream: "https://reports.example", Token: config.TokenClient, Audience: "reports", Methods: []string{"GET"}},
	}
	if len(d.Routes) != len(want) {
		t.Fatalf("routes = %+v", d.Routes)
	}
	for i := range want {
		g := d.Routes[i]
		if g.Prefix != want[i].Prefix || g.Upstream != want[i].Upstream || g.Token != want[i].Token || g.Audience != want[i].Audience || len(g.Methods) != len(want[i].Methods) {
			t.Errorf("route %d = %+v, want %+v", i, g, want[i])
		}
	}
	// The fixture's provider cannot be reached.
	if d.Provider.Error != "discovery_unavailable" || d.Provider.Issuer != "" {
		t.Errorf("provider = %+v, want discovery_unavailable", d.Provider)
	}
	// Reading diagnostics does not extend the session.
	if got, err := f.m.Load(context.Background(), withCookie(id), false); err != nil || !got.LastSeen.Equal(created) {
		t.Errorf("session last seen %v after diagnostics, err %v; want unchanged %v", got, err, created)
	}
}

func TestDiagnosticsAnonymous(t *testing.T) {
	f := newFixture(t)
	w := f.diagnostics("[::1]:1", "", map[string]string{"X-CSRF": "1"})
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", w.Code, w.Body)
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if string(d["session"]) != "null" {
		t.Errorf("session = %s, want null", d["session"])
	}
}

func withCookie(id string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: cookie, Value: id})
	return r
}
