package apiauth_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-bff/gatehouse/apiauth"
)

var (
	bareChallenges = []string{"Bearer", `DPoP algs="ES256 RS256 PS256 EdDSA"`}
	invalidToken   = []string{`Bearer error="invalid_token"`}
)

func TestBearerTokens(t *testing.T) {
	s := newSigner(t)
	rs := newKey(t, "rs-1", jose.RS256)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(rs, es)
	stranger := newKey(t, "es-1", jose.ES256) // same kid, not published
	good := s.tokenClaims()

	// alg none and HS256 tokens are made by hand: go-jose will not sign
	// with none, and the HS256 secret is the provider's public key, the
	// classic algorithm confusion attack (RFC 8725 §2.1).
	b64 := func(v any) string {
		j, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(j)
	}
	none := b64(map[string]string{"alg": "none", "typ": "at+jwt"}) + "." + b64(good) + "."
	der, _ := x509.MarshalPKIXPublicKey(rs.priv.Public())
	hmacSecret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs := &signingKey{kid: "rs-1", alg: jose.HS256}
	hsSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hmacSecret},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", hs.kid))
	hsJWS, _ := hsSigner.Sign([]byte(b64Claims(good)))
	hsToken, _ := hsJWS.CompactSerialize()
	esJSON := func() string {
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: es.priv},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", es.kid))
		jws, _ := sig.Sign([]byte(b64Claims(good)))
		return jws.FullSerialize()
	}()

	tests := []struct {
		name      string
		token     string
		skipTyp   bool
		status    int
		challenge []string
	}{
		{name: "valid RS256", token: rs.sign(t, "at+jwt", good), status: 200},
		{name: "valid ES256", token: es.sign(t, "at+jwt", good), status: 200},
		{name: "typ application/at+jwt", token: es.sign(t, "application/at+jwt", good), status: 200},
		{name: "typ in upper case", token: es.sign(t, "AT+JWT", good), status: 200},
		{name: "aud array containing the audience", token: es.sign(t, "at+jwt", with(good, map[string]any{"aud": []string{"other", testAudience}})), status: 200},
		{name: "exp within leeway", token: es.sign(t, "at+jwt", with(good, map[string]any{"exp": t0.Add(-20 * time.Second).Unix()})), status: 200},
		{name: "wrong iss", token: es.sign(t, "at+jwt", with(good, map[string]any{"iss": s.URL() + "/other"})), status: 401, challenge: invalidToken},
		{name: "wrong aud", token: es.sign(t, "at+jwt", with(good, map[string]any{"aud": "https://other.example.test"})), status: 401, challenge: invalidToken},
		{name: "aud missing", token: es.sign(t, "at+jwt", with(good, map[string]any{"aud": nil})), status: 401, challenge: invalidToken},
		{name: "expired", token: es.sign(t, "at+jwt", with(good, map[string]any{"exp": t0.Add(-time.Minute).Unix()})), status: 401, challenge: invalidToken},
		{name: "exp missing", token: es.sign(t, "at+jwt", with(good, map[string]any{"exp": nil})), status: 401, challenge: invalidToken},
		{name: "nbf in the future", token: es.sign(t, "at+jwt", with(good, map[string]any{"nbf": t0.Add(5 * time.Minute).Unix()})), status: 401, challenge: invalidToken},
		{name: "iat in the future", token: es.sign(t, "at+jwt", with(good, map[string]any{"iat": t0.Add(5 * time.Minute).Unix()})), status: 401, challenge: invalidToken},
		{name: "iat missing", token: es.sign(t, "at+jwt", with(good, map[string]any{"iat": nil})), status: 401, challenge: invalidToken},
		{name: "sub missing", token: es.sign(t, "at+jwt", with(good, map[string]any{"sub": nil})), status: 401, challenge: invalidToken},
		{name: "exp not a number", token: es.sign(t, "at+jwt", with(good, map[string]any{"exp": "tomorrow"})), status: 401, challenge: invalidToken},
		{name: "alg none", token: none, status: 401, challenge: invalidToken},
		{name: "HS256 with the public key as secret", token: hsToken, status: 401, challenge: invalidToken},
		{name: "JSON serialization", token: esJSON, status: 401, challenge: invalidToken},
		{name: "signed by an unpublished key with a known kid", token: stranger.sign(t, "at+jwt", good), status: 401, challenge: invalidToken},
		{name: "typ missing", token: es.sign(t, "", good), status: 401, challenge: invalidToken},
		{name: "typ JWT", token: es.sign(t, "JWT", good), status: 401, challenge: invalidToken},
		{name: "typ missing, SkipTypCheck", token: es.sign(t, "", good), skipTyp: true, status: 200},
		{name: "typ JWT, SkipTypCheck", token: es.sign(t, "JWT", good), skipTyp: true, status: 200},
		{name: "typ logout+jwt, SkipTypCheck", token: es.sign(t, "logout+jwt", good), skipTyp: true, status: 401, challenge: invalidToken},
		{name: "typ dpop+jwt, SkipTypCheck", token: es.sign(t, "dpop+jwt", good), skipTyp: true, status: 401, challenge: invalidToken},
		{name: "mTLS-bound token (cnf x5t#S256)", token: es.sign(t, "at+jwt", with(good, map[string]any{"cnf": map[string]string{"x5t#S256": "abc"}})), status: 401, challenge: invalidToken},
		{name: "cnf not an object", token: es.sign(t, "at+jwt", with(good, map[string]any{"cnf": "jkt"})), status: 401, challenge: invalidToken},
		{name: "DPoP-bound token as Bearer", token: es.sign(t, "at+jwt", with(good, map[string]any{"cnf": map[string]string{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})), status: 401, challenge: invalidToken},
		{name: "not a JWT", token: "opaque-token-value", status: 401, challenge: invalidToken},
		{name: "five-part JWE", token: "a.b.c.d.e", status: 401, challenge: invalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, s, newClock(), func(c *apiauth.Config) { c.SkipTypCheck = tt.skipTyp })
			got := serve(v, bearer("http://api.test/orders", tt.token))
			if got.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", got.status, tt.status, got.body)
			}
			if tt.status == 200 {
				if got.sub != testSub {
					t.Errorf("handler saw subject %q, want %q", got.sub, testSub)
				}
				return
			}
			if got.sub != "" {
				t.Error("handler reached for a refused request")
			}
			if !slices.Equal(got.challenge, tt.challenge) {
				t.Errorf("WWW-Authenticate %q, want %q", got.challenge, tt.challenge)
			}
		})
	}
}

// b64Claims is the JSON of claims, the payload of a hand-made JWS.
func b64Claims(c map[string]any) string {
	j, _ := json.Marshal(c)
	return string(j)
}

func TestRequestShapes(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	s.publishGateway(es)
	token := es.sign(t, "at+jwt", s.tokenClaims())

	tests := []struct {
		name      string
		headers   map[string][]string
		status    int
		challenge []string
		body      string
	}{
		{name: "no credentials", status: 401, challenge: bareChallenges, body: `{"error":"unauthorized"}`},
		{name: "another scheme", headers: map[string][]string{"Authorization": {"Basic YWxpY2U6cHc="}}, status: 401, challenge: bareChallenges},
		{name: "scheme in lower case", headers: map[string][]string{"Authorization": {"bearer " + token}}, status: 200},
		{name: "two Authorization headers", headers: map[string][]string{"Authorization": {"Bearer " + token, "Bearer " + token}}, status: 400, challenge: []string{`Bearer error="invalid_request"`}},
		{name: "empty token", headers: map[string][]string{"Authorization": {"Bearer "}}, status: 400, challenge: []string{`Bearer error="invalid_request"`}},
		{name: "no token", headers: map[string][]string{"Authorization": {"Bearer"}}, status: 400, challenge: []string{`Bearer error="invalid_request"`}},
		{name: "two assertion headers", headers: map[string][]string{"X-Gatehouse-Assertion": {"a", "b"}}, status: 400},
		{name: "invalid token", headers: map[string][]string{"Authorization": {"Bearer x.y.z"}}, status: 401, challenge: invalidToken, body: `{"error":"invalid_token"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, s, newClock(), nil)
			r := httptest.NewRequest(http.MethodGet, "http://api.test/orders", nil)
			for k, vals := range tt.headers {
				r.Header[k] = vals
			}
			got := serve(v, r)
			if got.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", got.status, tt.status, got.body)
			}
			if tt.challenge != nil && !slices.Equal(got.challenge, tt.challenge) {
				t.Errorf("WWW-Authenticate %q, want %q", got.challenge, tt.challenge)
			}
			if tt.body != "" && strings.TrimSpace(got.body) != tt.body {
				t.Errorf("body %q, want %q", got.body, tt.body)
			}
		})
	}
}

func TestCheckReturnsTypedErrors(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	v := newVerifier(t, s, newClock(), nil)

	c, err := v.Check(bearer("http://api.test/", es.sign(t, "at+jwt", s.tokenClaims())))
	if err != nil || c.Subject() != testSub || c["client_id"] != "gatehouse" {
		t.Fatalf("Check = %v, %v; want alice's claims", c, err)
	}
	if n, ok := c["exp"].(json.Number); !ok || n.String() != strconv.FormatInt(t0.Add(5*time.Minute).Unix(), 10) {
		t.Errorf("exp = %#v, want a json.Number", c["exp"])
	}

	_, err = v.Check(httptest.NewRequest(http.MethodGet, "http://api.test/", nil))
	var e *apiauth.Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "" {
		t.Errorf("no credentials: %#v, want *Error 401 with no code", err)
	}
	_, err = v.Check(bearer("http://api.test/", es.sign(t, "at+jwt", with(s.tokenClaims(), map[string]any{"aud": "x"}))))
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_token" || err.Error() != "apiauth: invalid_token" {
		t.Errorf("wrong audience: %#v, want *Error 401 invalid_token saying nothing more", err)
	}
	rec := httptest.NewRecorder()
	apiauth.WriteError(rec, err)
	if rec.Code != 401 || rec.Header().Get("Www-Authenticate") != `Bearer error="invalid_token"` || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("WriteError: %d %q", rec.Code, rec.Header())
	}
	rec = httptest.NewRecorder()
	apiauth.WriteError(rec, errors.New("not from apiauth"))
	if rec.Code != 401 {
		t.Errorf("WriteError of a foreign error: %d, want 401", rec.Code)
	}
}

func TestKeyRotationAndBoundedRefetch(t *testing.T) {
	s := newSigner(t)
	k1 := newKey(t, "k1", jose.ES256)
	k2 := newKey(t, "k2", jose.ES256)
	s.publish(k1)
	clk := newClock()
	v := newVerifier(t, s, clk, nil)
	claims := s.tokenClaims()
	status := func(k *signingKey) int {
		return serve(v, bearer("http://api.test/", k.sign(t, "at+jwt", claims))).status
	}

	if got := status(k1); got != 200 || s.jwksHits.Load() != 1 {
		t.Fatalf("k1: %d after %d fetches, want 200 after 1", got, s.jwksHits.Load())
	}
	// A bad signature under a known kid is not a reason to refetch.
	if got := status(&signingKey{kid: "k1", alg: jose.ES256, priv: k2.priv}); got != 401 || s.jwksHits.Load() != 1 {
		t.Fatalf("forged k1: %d after %d fetches, want 401 after 1", got, s.jwksHits.Load())
	}
	// Rotation: the provider now signs with k2, which the cache lacks.
	s.publish(k2)
	if got := status(k2); got != 200 || s.jwksHits.Load() != 2 {
		t.Fatalf("k2 after rotation: %d after %d fetches, want 200 after 2", got, s.jwksHits.Load())
	}
	if got := status(k1); got != 401 {
		t.Fatalf("withdrawn k1: %d, want 401", got)
	}
	// A flood of made-up key ids: the burst is spent, no more fetches
	// while the clock stands still.
	before := s.jwksHits.Load()
	for i := range 200 {
		if got := status(&signingKey{kid: fmt.Sprintf("forged-%d", i), alg: jose.ES256, priv: k2.priv}); got != 401 {
			t.Fatalf("forged kid %d: %d", i, got)
		}
	}
	if hits := s.jwksHits.Load(); hits > 3 || hits-before > 1 {
		t.Fatalf("%d JWKS fetches after a flood of 200 unknown kids (%d before), want at most 3 in all", hits, before)
	}
	if got := status(k2); got != 200 {
		t.Fatalf("k2 during the flood: %d, want 200 (cached keys still verify)", got)
	}
	// Time passes: one more refetch is allowed, and it finds a new key.
	k3 := newKey(t, "k3", jose.ES256)
	s.publish(k2, k3)
	clk.Advance(5 * time.Second)
	hits := s.jwksHits.Load()
	if got := status(k3); got != 200 || s.jwksHits.Load() != hits+1 {
		t.Fatalf("k3 after 5 s: %d after %d fetches, want 200 after %d", got, s.jwksHits.Load(), hits+1)
	}
	// After an hour the set is fetched again even for a known kid, so a
	// key the provider withdrew stops verifying.
	s.publish(k3)
	claims = with(claims, map[string]any{"iat": clk.Now().Add(time.Hour).Unix(), "exp": clk.Now().Add(time.Hour + time.Minute).Unix()})
	clk.Advance(time.Hour + time.Second)
	if got := status(k2); got != 401 {
		t.Fatalf("k2 an hour after it was withdrawn: %d, want 401", got)
	}
}

func TestKeySetProblems(t *testing.T) {
	t.Run("discovery names another issuer", func(t *testing.T) {
		s := newSigner(t)
		es := newKey(t, "es-1", jose.ES256)
		s.publish(es)
		s.issuer = "https://evil.example.test"
		v := newVerifier(t, s, newClock(), nil)
		got := serve(v, bearer("http://api.test/", es.sign(t, "at+jwt", s.tokenClaims())))
		if got.status != http.StatusServiceUnavailable || got.challenge != nil {
			t.Fatalf("status %d %q, want 503 without a challenge", got.status, got.challenge)
		}
		if s.jwksHits.Load() != 0 {
			t.Error("keys fetched from a provider whose discovery names another issuer")
		}
	})
	t.Run("provider down", func(t *testing.T) {
		v, err := apiauth.New(apiauth.Config{Issuer: "http://127.0.0.1:1", Audience: testAudience, Now: newClock().Now})
		if err != nil {
			t.Fatal(err)
		}
		es := newKey(t, "es-1", jose.ES256)
		if got := serve(v, bearer("http://api.test/", es.sign(t, "at+jwt", map[string]any{"sub": "x"}))); got.status != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", got.status)
		}
	})
	t.Run("symmetric and unreadable keys are ignored", func(t *testing.T) {
		s := newSigner(t)
		es := newKey(t, "es-1", jose.ES256)
		s.publish(es)
		s.extra = []json.RawMessage{
			json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}`),
			json.RawMessage(`{"kty":"XYZ","kid":"future"}`),
		}
		v := newVerifier(t, s, newClock(), nil)
		if got := serve(v, bearer("http://api.test/", es.sign(t, "at+jwt", s.tokenClaims()))); got.status != 200 {
			t.Fatalf("status %d, want 200: an unreadable key must not spoil the set", got.status)
		}
	})
	t.Run("key declared for another alg", func(t *testing.T) {
		s := newSigner(t)
		rs := newKey(t, "rs", jose.RS256)
		s.publish(rs) // declares alg RS256
		v := newVerifier(t, s, newClock(), nil)
		ps := &signingKey{kid: "rs", alg: jose.PS256, priv: rs.priv}
		if got := serve(v, bearer("http://api.test/", ps.sign(t, "at+jwt", s.tokenClaims()))); got.status != 401 {
			t.Fatalf("status %d, want 401 for PS256 under a key published for RS256", got.status)
		}
	})
	t.Run("token without kid, one key", func(t *testing.T) {
		s := newSigner(t)
		es := newKey(t, "es-1", jose.ES256)
		s.publish(es)
		v := newVerifier(t, s, newClock(), nil)
		nokid := &signingKey{alg: jose.ES256, priv: es.priv}
		if got := serve(v, bearer("http://api.test/", nokid.sign(t, "at+jwt", s.tokenClaims()))); got.status != 200 {
			t.Fatalf("status %d, want 200", got.status)
		}
	})
}

func TestLogsReasonNeverToken(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	var buf bytes.Buffer
	v := newVerifier(t, s, newClock(), func(c *apiauth.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	token := es.sign(t, "at+jwt", with(s.tokenClaims(), map[string]any{"exp": t0.Add(-time.Hour).Unix()}))
	got := serve(v, bearer("http://api.test/orders", token))
	if got.status != 401 || strings.Contains(got.body, "expired") {
		t.Fatalf("status %d body %q, want 401 that does not say why", got.status, got.body)
	}
	log := buf.String()
	if !strings.Contains(log, "expired") || !strings.Contains(log, "invalid_token") {
		t.Errorf("log %q does not say the token expired", log)
	}
	for _, part := range strings.Split(token, ".") {
		if strings.Contains(log, part) {
			t.Fatalf("log contains part of the token: %q", log)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  apiauth.Config
		want string
	}{
		{name: "no audience", cfg: apiauth.Config{Issuer: "https://op.test"}, want: "Audience"},
		{name: "neither issuer nor gateway", cfg: apiauth.Config{Audience: "a"}, want: "Issuer or Gateway"},
		{name: "plain http issuer", cfg: apiauth.Config{Issuer: "http://op.test", Audience: "a"}, want: "loopback"},
		{name: "relative gateway", cfg: apiauth.Config{Gateway: "/app", Audience: "a"}, want: "absolute"},
		{name: "public URL with query", cfg: apiauth.Config{Issuer: "https://op.test", Audience: "a", PublicURL: "https://api.test/?x=1"}, want: "query"},
		{name: "gateway with a path", cfg: apiauth.Config{Gateway: "https://app.test/", Audience: "a"}, want: "origin"},
		{name: "gateway JWKS without gateway", cfg: apiauth.Config{Issuer: "https://op.test", Audience: "a", GatewayJWKS: "https://app.test/k"}, want: "needs Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apiauth.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error about %q", err, tt.want)
			}
		})
	}
	if _, err := apiauth.New(apiauth.Config{Issuer: "https://op.test", Audience: "a", Gateway: "http://localhost:8080"}); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

// Check honours the request context only for its own wait: a fetch runs
// to completion for the callers that share it.
func TestCanceledRequestDoesNotPoisonKeys(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	v := newVerifier(t, s, newClock(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := bearer("http://api.test/", es.sign(t, "at+jwt", s.tokenClaims())).WithContext(ctx)
	if _, err := v.Check(r); err != nil {
		t.Fatalf("Check with a canceled context: %v", err)
	}
}

// Concurrent first requests share one key set fetch.
func TestConcurrentFirstRequestsFetchOnce(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	v := newVerifier(t, s, newClock(), nil)
	token := es.sign(t, "at+jwt", s.tokenClaims())
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := v.Check(bearer("http://api.test/", token))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.jwksHits.Load(); n != 1 {
		t.Errorf("%d JWKS fetches for 50 concurrent first requests, want 1", n)
	}
}
