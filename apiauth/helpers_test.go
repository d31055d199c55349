package apiauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-bff/gatehouse/apiauth"
)

// t0 is the tests' fixed time.
var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

const (
	testAudience = "https://orders.example.test"
	testSub      = "alice"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signingKey is a private key with its key id and algorithm.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) *signingKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, alg: alg, priv: priv}
}

func (k *signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign makes a compact JWS of claims with header typ (none when empty).
func (k *signingKey) sign(t testing.TB, typ string, claims any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if k.kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), k.kid)
	}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signer is a test OpenID provider and Gatehouse gateway in one: it serves
// a discovery document, the provider's JWKS at /jwks and the gateway's at
// /bff/jwks.json, and counts the key set fetches.
type signer struct {
	srv         *httptest.Server
	mu          sync.Mutex
	keys        []jose.JSONWebKey // published at /jwks
	gatewayKeys []jose.JSONWebKey // published at /bff/jwks.json
	extra       []json.RawMessage // raw extra JWKS entries
	issuer      string            // discovery's issuer; "" means the server URL
	jwksHits    atomic.Int32
	gatewayHits atomic.Int32
}

func newSigner(t testing.TB) *signer {
	t.Helper()
	s := &signer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		iss := s.issuer
		s.mu.Unlock()
		if iss == "" {
			iss = s.srv.URL
		}
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "jwks_uri": s.srv.URL + "/jwks",
			"authorization_endpoint": s.srv.URL + "/auth", "token_endpoint": s.srv.URL + "/token",
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		s.jwksHits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJWKS(w, s.keys, s.extra)
	})
	mux.HandleFunc("GET /bff/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		s.gatewayHits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJWKS(w, s.gatewayKeys, nil)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func writeJWKS(w http.ResponseWriter, keys []jose.JSONWebKey, extra []json.RawMessage) {
	out := []any{}
	for _, k := range keys {
		out = append(out, k)
	}
	for _, e := range extra {
		out = append(out, e)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"keys": out})
}

func (s *signer) URL() string { return s.srv.URL }

// publish replaces the provider's published keys.
func (s *signer) publish(keys ...*signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, k := range keys {
		s.keys = append(s.keys, k.public())
	}
}

// publishGateway replaces the gateway's published keys.
func (s *signer) publishGateway(keys ...*signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gatewayKeys = nil
	for _, k := range keys {
		s.gatewayKeys = append(s.gatewayKeys, k.public())
	}
}

// tokenClaims are the claims of a valid access token at t0.
func (s *signer) tokenClaims() map[string]any {
	return map[string]any{
		"iss": s.URL(), "aud": testAudience, "sub": testSub, "client_id": "gatehouse",
		"iat": t0.Unix(), "exp": t0.Add(5 * time.Minute).Unix(), "jti": "at-1",
		"scope": "orders:read orders:write", "groups": []string{"staff", "admins"},
	}
}

// assertionClaims are the claims of a valid gateway assertion at t0.
func (s *signer) assertionClaims() map[string]any {
	return map[string]any{
		"iss": s.URL(), "aud": testAudience, "sub": testSub, "email": "alice@example.test",
		"iat": t0.Unix(), "exp": t0.Add(60 * time.Second).Unix(), "jti": "as-1",
	}
}

// with returns a copy of m with the changes; a nil value deletes.
func with(m map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// newVerifier returns a verifier for s's issuer and gateway on clk.
func newVerifier(t testing.TB, s *signer, clk *clock, mutate func(*apiauth.Config)) *apiauth.Verifier {
	t.Helper()
	cfg := apiauth.Config{Issuer: s.URL(), Audience: testAudience, Gateway: s.URL(), Now: clk.Now}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := apiauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// answer is what a request to a verified handler got.
type answer struct {
	status    int
	challenge []string
	body      string
	sub       string // the handler's FromContext subject, "" when not reached
}

// serve runs r through v.Handler in front of a handler that reports the
// verified subject.
func serve(v *apiauth.Verifier, r *http.Request, inner ...func(http.Handler) http.Handler) answer {
	var reached string
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := apiauth.FromContext(r.Context())
		if !ok {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		reached = c.Subject()
		if reached == "" {
			reached = "(empty)"
		}
	})
	for i := len(inner) - 1; i >= 0; i-- {
		h = inner[i](h)
	}
	rec := httptest.NewRecorder()
	v.Handler(h).ServeHTTP(rec, r)
	return answer{status: rec.Code, challenge: rec.Result().Header.Values("Www-Authenticate"), body: rec.Body.String(), sub: reached}
}

func bearer(target, token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}
