package policy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func newPolicy(t *testing.T, opts Options) *Policy {
	t.Helper()
	opts.Route = "api:/api/"
	opts.Now = func() time.Time { return now }
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// alice is a session as login makes it from an ID token (claims decoded
// from JSON: numbers are float64, arrays []any).
func alice() *session.Session {
	return &session.Session{
		Subject: "alice",
		Claims: map[string]any{
			"sub": "alice", "email": "alice@example.com", "email_verified": true,
			"groups": []any{"staff", "ops"}, "level": float64(2), "org": map[string]any{"id": "o1"},
			"role": "admin", "flags": []any{true, float64(7)}, "nothing": nil,
		},
		Tokens:   session.Tokens{Scope: "openid profile orders:read admin:write"},
		ACR:      "urn:example:mfa",
		AuthTime: now.Add(-5 * time.Minute),
	}
}

func TestClaims(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims map[string][]string
		pass   bool
	}{
		{"array contains one", map[string][]string{"groups": {"admins", "ops"}}, true},
		{"array contains none", map[string][]string{"groups": {"admins"}}, false},
		{"string equals one", map[string][]string{"role": {"user", "admin"}}, true},
		{"string differs", map[string][]string{"role": {"Admin"}}, false},
		{"string is not split", map[string][]string{"email": {"alice"}}, false},
		{"boolean true", map[string][]string{"email_verified": {"true"}}, true},
		{"boolean True", map[string][]string{"email_verified": {"True"}}, true},
		{"boolean false", map[string][]string{"email_verified": {"false"}}, false},
		{"boolean is not 1", map[string][]string{"email_verified": {"1"}}, false},
		{"number", map[string][]string{"level": {"2"}}, true},
		{"number 2.0", map[string][]string{"level": {"2.0"}}, true},
		{"number differs", map[string][]string{"level": {"3"}}, false},
		{"array of mixed", map[string][]string{"flags": {"7"}}, true},
		{"object never", map[string][]string{"org": {"o1"}}, false},
		{"null never", map[string][]string{"nothing": {"", "null"}}, false},
		{"missing never", map[string][]string{"department": {""}}, false},
		{"every claim must hold", map[string][]string{"groups": {"ops"}, "role": {"user"}}, false},
		{"all hold", map[string][]string{"groups": {"ops"}, "role": {"admin"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicy(t, Options{Require: config.Require{Claims: tc.claims}})
			err := p.Check(alice())
			if tc.pass && err != nil {
				t.Errorf("Check = %v, want pass", err)
			}
			if !tc.pass && (err == nil || err.(*Denial).Reason != "claims") {
				t.Errorf("Check = %v, want a claims denial", err)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	p := newPolicy(t, Options{Require: config.Require{Scopes: []string{"admin:write", "orders:read"}}, RequestedScopes: []string{"openid"}})
	if err := p.Check(alice()); err != nil {
		t.Errorf("all scopes granted: %v", err)
	}
	s := alice()
	s.Tokens.Scope = "openid orders:read"
	if err := p.Check(s); err == nil || err.(*Denial).Reason != "scopes" {
		t.Errorf("a missing scope: %v, want a scopes denial", err)
	}
	s.Tokens.Scope = "admin:writeorders:read"
	if err := p.Check(s); err == nil {
		t.Error("scopes are space-separated tokens, not substrings")
	}
	// RFC 6749 §5.1: no scope in the token response means those requested.
	s.Tokens.Scope = ""
	if err := p.Check(s); err == nil {
		t.Error("no scope in the response and not requested: want a denial")
	}
	p = newPolicy(t, Options{Require: config.Require{Scopes: []string{"admin:write"}}, RequestedScopes: []string{"openid", "admin:write"}})
	if err := p.Check(s); err != nil {
		t.Errorf("no scope in the response, requested: %v", err)
	}
}

func TestStepUpConditions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		req    config.Require
		mutate func(*session.Session)
		reason string
	}{
		{"acr accepted", config.Require{ACR: []string{"urn:a", "urn:example:mfa"}}, nil, ""},
		{"acr other", config.Require{ACR: []string{"urn:a"}}, nil, "acr"},
		{"no acr", config.Require{ACR: []string{"urn:example:mfa"}}, func(s *session.Session) { s.ACR = "" }, "acr"},
		{"recent enough", config.Require{MaxAge: 10 * time.Minute}, nil, ""},
		{"too old", config.Require{MaxAge: 4 * time.Minute}, nil, "max_age"},
		{"no auth_time", config.Require{MaxAge: time.Hour}, func(s *session.Session) { s.AuthTime = time.Time{} }, "max_age"},
		{"claims first", config.Require{ACR: []string{"urn:a"}, Claims: map[string][]string{"role": {"x"}}}, nil, "claims"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := alice()
			if tc.mutate != nil {
				tc.mutate(s)
			}
			err := newPolicy(t, Options{Require: tc.req}).Check(s)
			switch {
			case tc.reason == "" && err != nil:
				t.Errorf("Check = %v, want pass", err)
			case tc.reason != "" && (err == nil || err.(*Denial).Reason != tc.reason):
				t.Errorf("Check = %v, want %s", err, tc.reason)
			}
		})
	}
}

func apply(t *testing.T, p *Policy, s *session.Session) (*httptest.ResponseRecorder, proxy.Credential, bool) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/api/x", nil)
	var cred proxy.Credential
	ok := p.Apply(w, r, s, &cred)
	return w, cred, ok
}

func TestApplyAnswers(t *testing.T) {
	var denied []string
	onDeny := func(route, reason string) { denied = append(denied, route+" "+reason) }

	p := newPolicy(t, Options{Require: config.Require{Claims: map[string][]string{"groups": {"admins"}}}, OnDeny: onDeny})
	w, _, ok := apply(t, p, alice())
	if ok || w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"error":"forbidden"`) {
		t.Errorf("claims not met: ok=%v %d %s, want 403 forbidden", ok, w.Code, w.Body)
	}
	w, _, ok = apply(t, p, nil)
	if ok || w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"error":"login_required"`) {
		t.Errorf("no session: ok=%v %d %s, want 401 login_required", ok, w.Code, w.Body)
	}

	p = newPolicy(t, Options{Require: config.Require{ACR: []string{"urn:a", "urn:b"}, MaxAge: 90 * time.Second}, OnDeny: onDeny})
	w, _, ok = apply(t, p, alice())
	var body map[string]any
	json.Unmarshal(w.Body.Bytes(), &body)
	if ok || w.Code != http.StatusUnauthorized || body["error"] != "step_up_required" || body["acr_values"] != "urn:a urn:b" || body["max_age"] != float64(90) {
		t.Errorf("step-up: ok=%v %d %s", ok, w.Code, w.Body)
	}
	p = newPolicy(t, Options{Require: config.Require{MaxAge: time.Minute}, OnDeny: onDeny})
	w, _, _ = apply(t, p, alice())
	body = nil
	json.Unmarshal(w.Body.Bytes(), &body)
	if _, has := body["acr_values"]; has || body["max_age"] != float64(60) {
		t.Errorf("max_age only: %s, want no acr_values", w.Body)
	}
	want := []string{"api:/api/ claims", "api:/api/ login_required", "api:/api/ acr", "api:/api/ max_age"}
	if strings.Join(denied, ",") != strings.Join(want, ",") {
		t.Errorf("denials counted %q, want %q", denied, want)
	}

	// No conditions: anyone the token mode let through passes.
	w, cred, ok := apply(t, newPolicy(t, Options{}), nil)
	if !ok || w.Body.Len() != 0 || cred.Headers != nil {
		t.Errorf("no policy: ok=%v body %q headers %v", ok, w.Body, cred.Headers)
	}
}

type fakeSigner struct {
	aud, sub string
	extra    map[string]any
}

func (f *fakeSigner) Sign(_ context.Context, aud, sub string, extra map[string]any) (string, error) {
	f.aud, f.sub, f.extra = aud, sub, extra
	return "signed.assertion.jwt", nil
}

func TestIdentityHeaders(t *testing.T) {
	signer := &fakeSigner{}
	p := newPolicy(t, Options{
		Identity: config.Identity{Assertion: true, Headers: map[string]string{
			"x-user-id": "sub", "X-User-Email": "email", "X-Groups": "groups", "X-Verified": "email_verified",
			"X-Level": "level", "X-Org": "org", "X-Dept": "department",
		}},
		Audience: "https://api.internal",
		Signer:   signer,
	})
	_, cred, ok := apply(t, p, alice())
	if !ok {
		t.Fatal("refused")
	}
	want := http.Header{
		"X-User-Id": {"alice"}, "X-User-Email": {"alice@example.com"}, "X-Groups": {"staff, ops"},
		"X-Verified": {"true"}, "X-Level": {"2"}, AssertionHeader: {"signed.assertion.jwt"},
	}
	for k, v := range want {
		if got := cred.Headers[k]; len(got) != 1 || got[0] != v[0] {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// A missing or object claim leaves the header absent, never empty.
	for _, k := range []string{"X-Org", "X-Dept"} {
		if _, has := cred.Headers[k]; has {
			t.Errorf("%s present: %q", k, cred.Headers[k])
		}
	}
	if len(cred.Headers) != len(want) {
		t.Errorf("headers %v, want exactly %v", cred.Headers, want)
	}
	if signer.aud != "https://api.internal" || signer.sub != "alice" || signer.extra["email"] != "alice@example.com" {
		t.Errorf("assertion for aud %q sub %q claims %v", signer.aud, signer.sub, signer.extra)
	}
	if _, has := signer.extra["department"]; has {
		t.Error("assertion carries a claim the session does not have")
	}
	// Control characters would split or smuggle headers: not sent.
	s := alice()
	s.Claims["email"] = "a@example.com\r\nX-Admin: 1"
	_, cred, _ = apply(t, p, s)
	if _, has := cred.Headers["X-User-Email"]; has {
		t.Errorf("header with control characters sent: %q", cred.Headers["X-User-Email"])
	}
	if got := p.HeaderNames(); strings.Join(got, ",") != "X-Dept,X-Groups,X-Level,X-Org,X-User-Email,X-User-Id,X-Verified" {
		t.Errorf("HeaderNames = %q", got)
	}
}

func TestAssertionNeedsSigner(t *testing.T) {
	if _, err := New(Options{Identity: config.Identity{Assertion: true}, Audience: "https://api"}); err == nil {
		t.Error("an assertion without a signer was accepted")
	}
}
