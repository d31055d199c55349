package hostileop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

const (
	testClientID   = "gatehouse"
	testSecret     = "a-client-secret-of-at-least-32-bytes-long"
	testRedirect   = "http://127.0.0.1/bff/callback"
	testPostLogout = "http://127.0.0.1/signed-out"
)

func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// rp is a relying party built from golang.org/x/oauth2 and go-oidc, talking
// to a hostile provider.
type rp struct {
	p        *Provider
	clk      *testkit.Clock
	ctx      context.Context
	op       *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRP(t *testing.T, opts ...Option) *rp {
	t.Helper()
	opts = append([]Option{
		WithClient(testClientID, testSecret, testRedirect),
		WithPostLogoutRedirectURIs(testClientID, testPostLogout),
		WithUser("alice", map[string]any{"name": "Alice", "email": "alice@example.test"}),
	}, opts...)
	p := New(t, opts...)
	clk := newClock()
	p.SetClock(clk.Now)
	ctx := t.Context()
	op, err := oidc.NewProvider(ctx, p.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &rp{
		p: p, clk: clk, ctx: ctx, op: op,
		conf: oauth2.Config{ClientID: testClientID, ClientSecret: testSecret, Endpoint: op.Endpoint(),
			RedirectURL: testRedirect, Scopes: []string{oidc.ScopeOpenID, "profile"}},
		verifier: op.Verifier(&oidc.Config{ClientID: testClientID, Now: clk.Now}),
	}
}

// authResponse is what came back to the redirect URI.
type authResponse struct {
	params   url.Values
	state    string
	nonce    string
	verifier string
}

// authorize runs the front-channel leg and returns the redirect's query.
func (r *rp) authorize(t *testing.T, extra ...oauth2.AuthCodeOption) authResponse {
	t.Helper()
	a := authResponse{state: randomString("state-"), nonce: randomString("nonce-"), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier), oidc.Nonce(a.nonce)}, extra...)
	res, err := r.p.HTTPClient().Get(r.conf.AuthCodeURL(a.state, opts...))
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatalf("authorize: location: %v", err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("authorize redirected to %q, want %q", got, testRedirect)
	}
	a.params = loc.Query()
	return a
}

// login runs the whole code flow and returns the token response.
func (r *rp) login(t *testing.T) (*oauth2.Token, authResponse) {
	t.Helper()
	a := r.authorize(t)
	if a.params.Get("state") != a.state {
		t.Fatalf("state = %q, want %q", a.params.Get("state"), a.state)
	}
	tok, err := r.conf.Exchange(r.ctx, a.params.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, a
}

func rawIDToken(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		t.Fatal("token response has no id_token")
	}
	return raw
}

// rpVerify is the ID token validation of OIDC Core §3.1.3.7 as a relying
// party must do it: go-oidc checks signature, alg, iss, aud and exp; the
// remaining checks (nonce, sub, iat, azp) go-oidc leaves to its caller and
// are done here.
func rpVerify(ctx context.Context, v *oidc.IDTokenVerifier, raw, nonce, wantSub string) (*oidc.IDToken, error) {
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if tok.Nonce != nonce {
		return nil, fmt.Errorf("nonce %q, want %q", tok.Nonce, nonce)
	}
	if tok.Subject == "" {
		return nil, errors.New("sub missing")
	}
	if wantSub != "" && tok.Subject != wantSub {
		return nil, fmt.Errorf("sub %q, want %q", tok.Subject, wantSub)
	}
	if tok.IssuedAt.IsZero() {
		return nil, errors.New("iat missing")
	}
	var c struct {
		Azp string `json:"azp"`
	}
	if err := tok.Claims(&c); err != nil {
		return nil, err
	}
	if len(tok.Audience) > 1 && c.Azp == "" {
		return nil, errors.New("several audiences and no azp")
	}
	if c.Azp != "" && c.Azp != testClientID {
		return nil, fmt.Errorf("azp %q, want %q", c.Azp, testClientID)
	}
	return tok, nil
}

// parsedJWT is a token taken apart without trusting it, to prove a defect.
type parsedJWT struct {
	alg, kid, typ string
	sig           []byte
	claims        map[string]any
	jws           *jose.JSONWebSignature
}

var allAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.HS256, "none"}

func parseJWT(t *testing.T, raw string) parsedJWT {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, allAlgs)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	if len(jws.Signatures) != 1 {
		t.Fatalf("%d signatures", len(jws.Signatures))
	}
	s := jws.Signatures[0]
	j := parsedJWT{alg: s.Header.Algorithm, kid: s.Header.KeyID, sig: s.Signature, jws: jws}
	if typ, ok := s.Header.ExtraHeaders[jose.HeaderType].(string); ok {
		j.typ = typ
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &j.claims); err != nil {
		t.Fatalf("claims: %v", err)
	}
	return j
}

// fetchJWKS returns the key set the provider publishes right now.
func fetchJWKS(t *testing.T, p *Provider) jose.JSONWebKeySet {
	t.Helper()
	res, err := p.HTTPClient().Get(p.URL + "/jwks")
	if err != nil {
		t.Fatalf("jwks: %v", err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	return set
}

// verifiesWithJWKS reports whether j's signature verifies with the
// published key its kid names (or any published key when it has no kid).
func verifiesWithJWKS(t *testing.T, p *Provider, j parsedJWT) bool {
	t.Helper()
	set := fetchJWKS(t, p)
	for _, k := range set.Keys {
		if j.kid != "" && k.KeyID != j.kid {
			continue
		}
		if _, err := j.jws.Verify(k); err == nil {
			return true
		}
	}
	return false
}

func published(set jose.JSONWebKeySet, kid string) bool {
	return len(set.Key(kid)) > 0
}

func postForm(t *testing.T, p *Provider, path string, form url.Values, basicID, basicSecret string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	res, err := p.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	return res, body
}

func userinfoStatus(t *testing.T, p *Provider, accessToken string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	res, err := p.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

func retrieveErrorCode(err error) (string, int) {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode, re.Response.StatusCode
	}
	return "", 0
}
