package apiauth_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-bff/gatehouse/apiauth"
)

func assertionRequest(a string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://api.test/orders", nil)
	r.Header.Set("X-Gatehouse-Assertion", a)
	return r
}

func TestAssertions(t *testing.T) {
	s := newSigner(t)
	gw := newKey(t, "gw-1", jose.ES256)
	op := newKey(t, "op-1", jose.ES256)
	s.publishGateway(gw)
	s.publish(op)
	good := s.assertionClaims()

	tests := []struct {
		name   string
		jwt    string
		at     time.Duration // clock offset from t0
		status int
	}{
		{name: "valid", jwt: gw.sign(t, "JWT", good), status: 200},
		{name: "valid without typ", jwt: gw.sign(t, "", good), status: 200},
		{name: "valid 59 s later", jwt: gw.sign(t, "JWT", good), at: 59 * time.Second, status: 200},
		{name: "iat a little ahead of our clock", jwt: gw.sign(t, "JWT", good), at: -3 * time.Second, status: 200},
		{name: "at exp", jwt: gw.sign(t, "JWT", good), at: 60 * time.Second, status: 401},
		{name: "61 s later", jwt: gw.sign(t, "JWT", good), at: 61 * time.Second, status: 401},
		{name: "lifetime over 60 s", jwt: gw.sign(t, "JWT", with(good, map[string]any{"exp": t0.Add(61 * time.Second).Unix()})), status: 401},
		{name: "another audience", jwt: gw.sign(t, "JWT", with(good, map[string]any{"aud": "http://billing:8080"})), status: 401},
		{name: "another issuer", jwt: gw.sign(t, "JWT", with(good, map[string]any{"iss": "https://other-app.example.test"})), status: 401},
		{name: "no jti", jwt: gw.sign(t, "JWT", with(good, map[string]any{"jti": nil})), status: 401},
		{name: "no sub", jwt: gw.sign(t, "JWT", with(good, map[string]any{"sub": nil})), status: 401},
		{name: "no iat", jwt: gw.sign(t, "JWT", with(good, map[string]any{"iat": nil})), status: 401},
		{name: "signed with the provider's key", jwt: op.sign(t, "JWT", good), status: 401},
		{name: "an access token as assertion", jwt: op.sign(t, "at+jwt", s.tokenClaims()), status: 401},
		{name: "garbage", jwt: "not a jwt", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			clk.Advance(tt.at)
			v := newVerifier(t, s, clk, nil)
			got := serve(v, assertionRequest(tt.jwt))
			if got.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", got.status, tt.status, got.body)
			}
			if tt.status == 200 {
				if got.sub != testSub {
					t.Errorf("handler saw %q", got.sub)
				}
			} else if !slices.Equal(got.challenge, invalidToken) {
				t.Errorf("WWW-Authenticate %q", got.challenge)
			}
		})
	}
}

func TestAssertionClaimsAndPrecedence(t *testing.T) {
	s := newSigner(t)
	gw := newKey(t, "gw-1", jose.ES256)
	op := newKey(t, "op-1", jose.ES256)
	s.publishGateway(gw)
	s.publish(op)
	assertion := gw.sign(t, "JWT", s.assertionClaims())

	v := newVerifier(t, s, newClock(), nil)
	c, err := v.Check(assertionRequest(assertion))
	if err != nil || c["email"] != "alice@example.test" {
		t.Fatalf("Check = %v, %v; want the identity claims", c, err)
	}

	// With Issuer set, an Authorization header decides, whatever the
	// assertion says.
	r := assertionRequest(assertion)
	r.Header.Set("Authorization", "Bearer not-a-token")
	if got := serve(v, r); got.status != 401 {
		t.Errorf("bad token with a good assertion: %d, want 401", got.status)
	}
	// Without Issuer, Authorization is not looked at.
	gwOnly := newVerifier(t, s, newClock(), func(c *apiauth.Config) { c.Issuer = "" })
	if got := serve(gwOnly, r); got.status != 200 {
		t.Errorf("assertion-only API with a stray Authorization header: %d, want 200", got.status)
	}
	if got := serve(gwOnly, bearer("http://api.test/", op.sign(t, "at+jwt", s.tokenClaims()))); got.status != 401 || !slices.Equal(got.challenge, []string{"Bearer"}) {
		t.Errorf("assertion-only API given a token: %d %q, want 401 with a bare Bearer challenge", got.status, got.challenge)
	}
	// Without Gateway, the assertion is not looked at.
	tokOnly := newVerifier(t, s, newClock(), func(c *apiauth.Config) { c.Gateway = "" })
	if got := serve(tokOnly, assertionRequest(assertion)); got.status != 401 || !slices.Equal(got.challenge, bareChallenges) {
		t.Errorf("token-only API given an assertion: %d %q, want 401 with bare challenges", got.status, got.challenge)
	}
}

func TestGatewayJWKSURL(t *testing.T) {
	s := newSigner(t)
	gw := newKey(t, "gw-1", jose.ES256)
	s.publish(gw) // at /jwks, not /bff/jwks.json
	v := newVerifier(t, s, newClock(), func(c *apiauth.Config) { c.GatewayJWKS = s.URL() + "/jwks" })
	if got := serve(v, assertionRequest(gw.sign(t, "JWT", s.assertionClaims()))); got.status != 200 {
		t.Fatalf("status %d, want 200 with keys from GatewayJWKS", got.status)
	}
	if s.gatewayHits.Load() != 0 {
		t.Error("default /bff/jwks.json fetched although GatewayJWKS is set")
	}
}
