package systemtest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// startAuthz runs a gateway against the hostile provider, which signs in
// alice with the given claims and reads the gateway's clock, with one
// extra route /admin/ to the same upstream set up by route.
func startAuthz(t *testing.T, claims map[string]any, route func(*config.Route)) (*env, *hostileop.Provider, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e := newEnv(t)
	e.options = []gatehouse.Option{gatehouse.WithMetrics(reg)}
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()),
		hostileop.WithUser("alice", claims))
	op.SetClock(e.clock.Now)
	e.start(op.URL, func(c *config.Config) {
		r := config.Route{Prefix: "/admin/", Upstream: e.api.URL}
		route(&r)
		c.Routes = append(c.Routes, r)
	})
	return e, op, reg
}

func errorBody(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("error body: %v", err)
	}
	return m
}

// A request failing the route's claims or scopes is 403 forbidden, never
// reaches the upstream, and is counted by route and reason.
func TestPolicyForbiddenNeverReachesUpstream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		require config.Require
		reason  string
	}{
		{"claims", config.Require{Claims: map[string][]string{"groups": {"admins", "ops"}}}, "claims"},
		{"scopes", config.Require{Scopes: []string{"admin:write"}}, "scopes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, reg := startAuthz(t, map[string]any{"groups": []string{"staff"}}, func(r *config.Route) { r.Require = tc.require })
			b := e.browser()
			b.login("/")
			if resp := b.api("GET", "/api/x"); resp.StatusCode != http.StatusOK {
				t.Fatalf("route without require = %d", resp.StatusCode)
			}
			_, before := e.api.Last()
			resp := b.api("GET", "/admin/x")
			if resp.StatusCode != http.StatusForbidden || errorBody(t, resp)["error"] != "forbidden" {
				t.Errorf("GET /admin/x = %d, want 403 forbidden", resp.StatusCode)
			}
			if _, after := e.api.Last(); after != before {
				t.Error("the upstream was called for a forbidden request")
			}
			key := `gatehouse_policy_denied_total{reason=` + tc.reason + `,route=api:/admin/}`
			if got := scrape(t, reg)[key]; got != 1 {
				t.Errorf("%s = %v, want 1", key, got)
			}
		})
	}
}

func TestPolicyAllowsWhatItRequires(t *testing.T) {
	e, _, _ := startAuthz(t, map[string]any{"groups": []string{"staff", "ops"}, "email_verified": true}, func(r *config.Route) {
		r.Require = config.Require{Claims: map[string][]string{"groups": {"admins", "ops"}, "email_verified": {"true"}}, Scopes: []string{"openid"}}
	})
	b := e.browser()
	if resp := b.api("GET", "/admin/x"); resp.StatusCode != http.StatusUnauthorized || errorBody(t, resp)["error"] != "login_required" {
		t.Errorf("anonymous = %d, want 401 login_required", resp.StatusCode)
	}
	b.login("/")
	if resp := b.api("GET", "/admin/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("member of ops = %d, want 200", resp.StatusCode)
	}
}

// acr or max_age not met: 401 step_up_required naming what the route
// requires; the upstream is not called.
func TestPolicyStepUpRequired(t *testing.T) {
	e, _, reg := startAuthz(t, map[string]any{"acr": "urn:example:pwd"}, func(r *config.Route) {
		r.Require = config.Require{ACR: []string{"urn:example:mfa", "urn:example:hwk"}, MaxAge: 15 * time.Minute}
	})
	b := e.browser()
	b.login("/")
	_, before := e.api.Last()
	resp := b.api("GET", "/admin/x")
	body := errorBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || body["error"] != "step_up_required" ||
		body["acr_values"] != "urn:example:mfa urn:example:hwk" || body["max_age"] != float64(900) {
		t.Errorf("GET /admin/x = %d %v, want 401 step_up_required with acr_values and max_age", resp.StatusCode, body)
	}
	if _, after := e.api.Last(); after != before {
		t.Error("the upstream was called for a request needing step-up")
	}
	if got := scrape(t, reg)[`gatehouse_policy_denied_total{reason=acr,route=api:/admin/}`]; got != 1 {
		t.Errorf("acr denials = %v, want 1", got)
	}
}

func TestPolicyMaxAge(t *testing.T) {
	e, _, _ := startAuthz(t, nil, func(r *config.Route) { r.Require = config.Require{MaxAge: 15 * time.Minute} })
	b := e.browser()
	b.login("/")
	if resp := b.api("GET", "/admin/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh login = %d, want 200", resp.StatusCode)
	}
	e.clock.Advance(16 * time.Minute)
	resp := b.api("GET", "/admin/x")
	body := errorBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || body["error"] != "step_up_required" || body["max_age"] != float64(900) {
		t.Errorf("16 minutes after login = %d %v, want 401 step_up_required", resp.StatusCode, body)
	}
	if _, has := body["acr_values"]; has {
		t.Errorf("acr_values sent for a route that requires none: %v", body)
	}
}

// Duende BFF's rule: no browser Cookie header reaches an upstream unless
// the route lists the cookie; the session cookie never does.
func TestNoCookieHeaderUpstreamByDefault(t *testing.T) {
	e, _, _ := startAuthz(t, nil, func(r *config.Route) { r.ForwardCookies = []string{"locale"} })
	b := e.browser()
	b.login("/")
	for path, want := range map[string]string{"/api/x": "", "/admin/x": "locale=fr"} {
		resp := b.do("GET", path, map[string]string{"X-CSRF": "1", "Cookie": "locale=fr; tracking=1"}, false)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		got, _ := e.api.Last()
		var cookies []string
		for k, vs := range got.Header {
			if strings.EqualFold(k, "cookie") {
				cookies = append(cookies, vs...)
			}
		}
		if strings.Join(cookies, "; ") != want {
			t.Errorf("GET %s: upstream Cookie = %q, want %q", path, cookies, want)
		}
	}
}

// rawAPI sends an API call with header names exactly as given.
func (b *browser) rawAPI(path string, header map[string]string) *http.Response {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.publicURL+path, nil)
	req.Header["X-CSRF"] = []string{"1"}
	for k, v := range header {
		req.Header[k] = []string{v}
	}
	resp, err := b.noFollow().Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// Identity headers come from the session's claims only: every spelling a
// browser sends is removed, and a missing claim sends no header.
func TestSpoofedIdentityHeadersNeverArrive(t *testing.T) {
	e, _, _ := startAuthz(t, map[string]any{"email": "alice@example.com", "groups": []string{"staff", "ops"}}, func(r *config.Route) {
		r.Identity = config.Identity{Headers: map[string]string{"X-User-Id": "sub", "X-User-Email": "email", "X-Team": "groups", "X-Dept": "department"}}
	})
	b := e.browser()
	b.login("/")
	spoofed := map[string]string{}
	for _, name := range []string{"X-User-Id", "x-user-id", "X_User_Id", "x_user-ID", "X-USER-EMAIL", "x_user_email", "X-Team", "x-team", "X-Dept", "x_dept", "X-Gatehouse-Assertion", "x_gatehouse_assertion"} {
		spoofed[name] = "spoofed"
	}
	for _, path := range []string{"/admin/x", "/api/x"} {
		if resp := b.rawAPI(path, spoofed); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		got, _ := e.api.Last()
		for k, vs := range got.Header {
			for _, v := range vs {
				if v == "spoofed" {
					t.Errorf("GET %s: spoofed %s reached the upstream", path, k)
				}
			}
		}
		if path == "/api/x" {
			continue
		}
		want := map[string]string{"X-User-Id": "alice", "X-User-Email": "alice@example.com", "X-Team": "staff, ops"}
		for k, v := range want {
			if vs := got.Header[k]; len(vs) != 1 || vs[0] != v {
				t.Errorf("%s = %q, want %q", k, vs, v)
			}
		}
		if _, has := got.Header["X-Dept"]; has {
			t.Error("X-Dept sent for a claim the session does not have")
		}
	}
}

// fetchJWKS reads <bff.prefix>/jwks.json as an API would.
func fetchJWKS(t *testing.T, e *env) jose.JSONWebKeySet {
	t.Helper()
	resp, err := e.srv.Client().Get(e.publicURL + "/bff/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&set) != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks.json = %d", resp.StatusCode)
	}
	return set
}

// verifyAssertion checks an assertion as an API would: a key from
// jwks.json, ES256, the issuer, the audience and exp at time at.
func verifyAssertion(set jose.JSONWebKeySet, raw, issuer, audience string, at time.Time) (map[string]any, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	all := map[string]any{}
	if err := tok.Claims(set, &std, &all); err != nil {
		return nil, err
	}
	return all, std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: at}, 0)
}

func assertionRoute(r *config.Route) {
	r.Identity = config.Identity{Assertion: true, Headers: map[string]string{"X-User-Email": "email"}}
}

func TestAssertionVerifiesWithJWKS(t *testing.T) {
	e, _, _ := startAuthz(t, map[string]any{"email": "alice@example.com"}, assertionRoute)
	b := e.browser()
	b.login("/")
	if resp := b.rawAPI("/admin/x", map[string]string{"X-Gatehouse-Assertion": "forged"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/x = %d", resp.StatusCode)
	}
	got, _ := e.api.Last()
	raw := got.Header.Get("X-Gatehouse-Assertion")
	if raw == "" || raw == "forged" {
		t.Fatalf("X-Gatehouse-Assertion = %q", raw)
	}
	set := fetchJWKS(t, e)
	// The audience is the upstream's origin: the route has no audience.
	claims, err := verifyAssertion(set, raw, e.publicURL, e.api.URL, e.clock.Now())
	if err != nil {
		t.Fatalf("assertion does not verify with jwks.json: %v", err)
	}
	if claims["sub"] != "alice" || claims["email"] != "alice@example.com" || claims["jti"] == nil {
		t.Errorf("assertion claims = %v", claims)
	}
	if _, err := verifyAssertion(set, raw, e.publicURL, e.api.URL, e.clock.Now().Add(61*time.Second)); err == nil {
		t.Error("assertion still valid 61s after it was made")
	}
	if _, err := verifyAssertion(set, raw, e.publicURL, "https://other-api.internal", e.clock.Now()); err == nil {
		t.Error("assertion accepted for another audience")
	}
	// Routes that do not ask get none.
	b.api("GET", "/api/x")
	if got, _ := e.api.Last(); got.Header.Get("X-Gatehouse-Assertion") != "" {
		t.Error("a route without identity.assertion got an assertion")
	}
}

// Two gateways on one Redis store sign with one key: an assertion made by
// either verifies with the other's jwks.json.
func TestAssertionKeySharedAcrossReplicas(t *testing.T) {
	url := redisURL(t)
	a, b := newEnv(t), newEnv(t)
	b.clock = a.clock
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, a.callbackURL(), b.callbackURL()))
	op.SetClock(a.clock.Now)
	key := newKey(t, "k1")
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	t.Cleanup(func() { rc.Close() })
	prefix := redistest.Prefix(t, rc)
	mutate := func(c *config.Config) {
		redisConfig(url, prefix, key)(c)
		c.Routes[0].Identity.Assertion = true
	}
	a.start(op.URL, mutate)
	b.start(op.URL, mutate)
	setA, setB := fetchJWKS(t, a), fetchJWKS(t, b)
	if len(setA.Keys) != 1 || len(setB.Keys) != 1 || setA.Keys[0].KeyID != setB.Keys[0].KeyID {
		t.Fatalf("replicas publish different keys: %v and %v", setA.Keys, setB.Keys)
	}
	ba := b.browser()
	ba.login("/")
	ba.api("GET", "/api/x")
	got, _ := b.api.Last()
	if _, err := verifyAssertion(setA, got.Header.Get("X-Gatehouse-Assertion"), b.publicURL, b.api.URL, a.clock.Now()); err != nil {
		t.Errorf("B's assertion does not verify with A's jwks.json: %v", err)
	}
}

// The session keeps the ID token's acr from login: a route requiring it
// lets the session through.
func TestPolicyACRFromLogin(t *testing.T) {
	e, _, _ := startAuthz(t, map[string]any{"acr": "urn:example:mfa"}, func(r *config.Route) {
		r.Require = config.Require{ACR: []string{"urn:example:mfa"}, MaxAge: time.Minute}
	})
	b := e.browser()
	b.login("/")
	if resp := b.api("GET", "/admin/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("session with acr urn:example:mfa, just signed in = %d, want 200", resp.StatusCode)
	}
}
