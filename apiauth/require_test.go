package apiauth_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-bff/gatehouse/apiauth"
	"github.com/gatehouse-bff/gatehouse/internal/dpop"
)

func TestRequireScope(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	v := newVerifier(t, s, newClock(), nil)
	base := with(s.tokenClaims(), map[string]any{"scope": nil})

	tests := []struct {
		name   string
		claims map[string]any
		need   []string
		status int
	}{
		{name: "space-separated scope has it", claims: with(base, map[string]any{"scope": "orders:read orders:write"}), need: []string{"orders:write"}, status: 200},
		{name: "has all of several", claims: with(base, map[string]any{"scope": "a b c"}), need: []string{"c", "a"}, status: 200},
		{name: "array scope", claims: with(base, map[string]any{"scope": []string{"orders:write"}}), need: []string{"orders:write"}, status: 200},
		{name: "scp array", claims: with(base, map[string]any{"scp": []string{"orders:write"}}), need: []string{"orders:write"}, status: 200},
		{name: "scp string", claims: with(base, map[string]any{"scp": "orders:write"}), need: []string{"orders:write"}, status: 200},
		{name: "lacks it", claims: with(base, map[string]any{"scope": "orders:read"}), need: []string{"orders:write"}, status: 403},
		{name: "lacks one of several", claims: with(base, map[string]any{"scope": "a b"}), need: []string{"a", "c"}, status: 403},
		{name: "prefix is not the scope", claims: with(base, map[string]any{"scope": "orders:writer"}), need: []string{"orders:write"}, status: 403},
		{name: "no scope claim", claims: base, need: []string{"orders:write"}, status: 403},
		{name: "scope not a string", claims: with(base, map[string]any{"scope": 7}), need: []string{"7"}, status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := serve(v, bearer("http://api.test/", es.sign(t, "at+jwt", tt.claims)), apiauth.RequireScope(tt.need...))
			if got.status != tt.status {
				t.Fatalf("status %d, want %d", got.status, tt.status)
			}
			if tt.status == 403 {
				want := []string{`Bearer error="insufficient_scope", scope="` + strings.Join(tt.need, " ") + `"`}
				if !slices.Equal(got.challenge, want) || got.sub != "" {
					t.Errorf("WWW-Authenticate %q (handler reached: %v), want %q", got.challenge, got.sub != "", want)
				}
			}
		})
	}
}

func TestRequireScopeDPoPChallenge(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	key, _ := dpop.NewKey()
	bound := es.sign(t, "at+jwt", with(s.tokenClaims(), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}))
	v := newVerifier(t, s, newClock(), nil)
	const url = "http://api.test/admin"
	got := serve(v, dpopRequest("GET", url, bound, mustProof(t, key, "GET", url, bound, t0)), apiauth.RequireScope("admin:write"))
	want := []string{`DPoP error="insufficient_scope", scope="admin:write", algs="ES256 RS256 PS256 EdDSA"`}
	if got.status != 403 || !slices.Equal(got.challenge, want) {
		t.Fatalf("%d %q, want 403 %q", got.status, got.challenge, want)
	}
}

func TestRequireClaim(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	v := newVerifier(t, s, newClock(), nil)
	base := s.tokenClaims()

	tests := []struct {
		name   string
		claims map[string]any
		claim  string
		values []string
		status int
	}{
		{name: "array contains", claims: base, claim: "groups", values: []string{"admins"}, status: 200},
		{name: "array contains one of", claims: base, claim: "groups", values: []string{"ops", "staff"}, status: 200},
		{name: "array lacks", claims: base, claim: "groups", values: []string{"ops"}, status: 403},
		{name: "string equals", claims: with(base, map[string]any{"tenant": "acme"}), claim: "tenant", values: []string{"acme"}, status: 200},
		{name: "string differs in case", claims: with(base, map[string]any{"tenant": "ACME"}), claim: "tenant", values: []string{"acme"}, status: 403},
		{name: "string is not a substring match", claims: with(base, map[string]any{"groups": "admins-readonly"}), claim: "groups", values: []string{"admins"}, status: 403},
		{name: "bool true", claims: with(base, map[string]any{"email_verified": true}), claim: "email_verified", values: []string{"true"}, status: 200},
		{name: "bool false", claims: with(base, map[string]any{"email_verified": false}), claim: "email_verified", values: []string{"true"}, status: 403},
		{name: "number", claims: with(base, map[string]any{"level": 3}), claim: "level", values: []string{"3"}, status: 200},
		{name: "missing never matches", claims: base, claim: "department", values: []string{""}, status: 403},
		{name: "null never matches", claims: with(base, map[string]any{"department": nil}), claim: "department", values: []string{"null", ""}, status: 403},
		{name: "object never matches", claims: with(base, map[string]any{"org": map[string]string{"id": "acme"}}), claim: "org", values: []string{"acme"}, status: 403},
		{name: "nested array never matches", claims: with(base, map[string]any{"groups": [][]string{{"admins"}}}), claim: "groups", values: []string{"admins"}, status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := serve(v, bearer("http://api.test/", es.sign(t, "at+jwt", tt.claims)), apiauth.RequireClaim(tt.claim, tt.values...))
			if got.status != tt.status {
				t.Fatalf("status %d, want %d", got.status, tt.status)
			}
			if tt.status == 403 && (got.challenge != nil || got.body != `{"error":"forbidden"}`+"\n" || got.sub != "") {
				t.Errorf("challenge %q body %q reached %v; want a plain 403 forbidden", got.challenge, got.body, got.sub != "")
			}
		})
	}
}

func TestRequireWithoutHandlerRefuses(t *testing.T) {
	for name, mw := range map[string]func(http.Handler) http.Handler{
		"RequireScope": apiauth.RequireScope("a"),
		"RequireClaim": apiauth.RequireClaim("groups", "admins"),
	} {
		rec := httptest.NewRecorder()
		reached := false
		mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true })).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 401 || reached {
			t.Errorf("%s without Verifier.Handler: %d (reached %v), want 401", name, rec.Code, reached)
		}
	}
}

func TestRequireScopePanicsOnInvalidScope(t *testing.T) {
	for _, bad := range []string{"", "a b", `a"b`, `a\b`} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RequireScope(%q) did not panic", bad)
				}
			}()
			apiauth.RequireScope(bad)
		}()
	}
}
