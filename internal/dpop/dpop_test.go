package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const tokenURL = "https://op.example.test/token"

func mustKey(t *testing.T) *Key {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestProofRoundTrip(t *testing.T) {
	k := mustKey(t)
	proof, err := k.Proof("POST", tokenURL+"?x=1#frag", "at-123", "n-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyProof(proof, "POST", "https://OP.example.test:443/token?y=2", "at-123", t0.Add(time.Second), time.Minute)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if c.JKT != k.Thumbprint() || c.HTU != tokenURL || c.HTM != "POST" || c.Nonce != "n-1" ||
		!c.IssuedAt.Equal(t0) || c.ATH != AccessTokenHash("at-123") || c.JTI == "" {
		t.Fatalf("claims = %+v", c)
	}
	jkt, err := Verify(proof, "POST", tokenURL, "", t0, time.Minute)
	if err != nil || jkt != k.Thumbprint() {
		t.Fatalf("Verify = %q, %v", jkt, err)
	}
	p2, _ := k.Proof("POST", tokenURL, "", "", t0)
	c1, _ := VerifyProof(proof, "POST", tokenURL, "", t0, time.Minute)
	c2, err := VerifyProof(p2, "POST", tokenURL, "", t0, time.Minute)
	if err != nil || c1.JTI == c2.JTI {
		t.Fatalf("jti not unique: %v", err)
	}
	if c2.ATH != "" || c2.Nonce != "" {
		t.Fatalf("unexpected ath/nonce: %+v", c2)
	}

	// Header: typ dpop+jwt, ES256, public jwk only.
	tok, err := jwt.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Headers[0]
	if h.Algorithm != "ES256" || h.ExtraHeaders[jose.HeaderType] != ProofType || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("header = %+v", h)
	}
}

// sign makes a proof-shaped JWS from arbitrary parts, to exercise Verify's
// rejections.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, embed bool, typ string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: embed}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func goodClaims() map[string]any {
	return map[string]any{"jti": "j1", "htm": "POST", "htu": tokenURL, "iat": t0.Unix(), "ath": AccessTokenHash("at")}
}

func with(kv ...any) map[string]any {
	c := goodClaims()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func TestVerifyRejects(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := sign(t, jose.ES256, ec, true, ProofType, goodClaims())
	if _, err := Verify(good, "POST", tokenURL, "at", t0, time.Minute); err != nil {
		t.Fatalf("control proof rejected: %v", err)
	}
	rsaGood := sign(t, jose.PS256, rk, true, ProofType, goodClaims())
	if _, err := Verify(rsaGood, "POST", tokenURL, "at", t0, time.Minute); err != nil {
		t.Fatalf("PS256 proof rejected: %v", err)
	}
	parts := strings.Split(good, ".")
	otherSig := strings.Split(sign(t, jose.ES256, ec, true, ProofType, with("htm", "GET")), ".")[2]

	// alg none: header {"alg":"none","typ":"dpop+jwt"} with the good payload.
	noneHdr := b64(`{"alg":"none","typ":"dpop+jwt"}`)
	cases := []struct {
		name, proof, method, url, token string
		now                             time.Time
	}{
		{"tampered payload", parts[0] + "." + b64(`{"jti":"j1","htm":"GET","htu":"`+tokenURL+`","iat":`+itoa(t0.Unix())+`}`) + "." + parts[2], "GET", tokenURL, "", t0},
		{"signature of another payload", parts[0] + "." + parts[1] + "." + otherSig, "POST", tokenURL, "at", t0},
		{"wrong htm", good, "GET", tokenURL, "at", t0},
		{"wrong htu path", good, "POST", "https://op.example.test/other", "at", t0},
		{"wrong htu host", good, "POST", "https://evil.example.test/token", "at", t0},
		{"wrong htu scheme", good, "POST", "http://op.example.test/token", "at", t0},
		{"stale iat", good, "POST", tokenURL, "at", t0.Add(2 * time.Minute)},
		{"future iat", good, "POST", tokenURL, "at", t0.Add(-2 * time.Minute)},
		{"ath for another token", good, "POST", tokenURL, "other", t0},
		{"ath missing", sign(t, jose.ES256, ec, true, ProofType, with("ath", nil)), "POST", tokenURL, "at", t0},
		{"jti missing", sign(t, jose.ES256, ec, true, ProofType, with("jti", nil)), "POST", tokenURL, "at", t0},
		{"iat missing", sign(t, jose.ES256, ec, true, ProofType, with("iat", nil)), "POST", tokenURL, "at", t0},
		{"typ JWT", sign(t, jose.ES256, ec, true, "JWT", goodClaims()), "POST", tokenURL, "at", t0},
		{"typ missing", sign(t, jose.ES256, ec, true, "", goodClaims()), "POST", tokenURL, "at", t0},
		{"no jwk header", sign(t, jose.ES256, ec, false, ProofType, goodClaims()), "POST", tokenURL, "at", t0},
		{"alg none", noneHdr + "." + parts[1] + ".", "POST", tokenURL, "at", t0},
		{"HS256", sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), false, ProofType, goodClaims()), "POST", tokenURL, "at", t0},
		{"garbage", "not.a.jwt", "POST", tokenURL, "at", t0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.proof, tc.method, tc.url, tc.token, tc.now, time.Minute)
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("err = %v, want ErrInvalidProof", err)
			}
		})
	}
}

func TestVerifyRejectsPrivateJWK(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv := jose.JSONWebKey{Key: ec}
	pj, _ := json.Marshal(priv)
	hdr := b64(`{"alg":"ES256","typ":"dpop+jwt","jwk":` + string(pj) + `}`)
	payload := b64(`{"jti":"j","htm":"POST","htu":"` + tokenURL + `","iat":` + itoa(t0.Unix()) + `}`)
	// The signature does not matter: the header must be refused first.
	if _, err := Verify(hdr+"."+payload+".AAAA", "POST", tokenURL, "", t0, time.Minute); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("err = %v", err)
	}
}

func TestThumbprintStableAcrossMarshal(t *testing.T) {
	k := mustKey(t)
	der, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if k.Thumbprint() == "" || k2.Thumbprint() != k.Thumbprint() {
		t.Fatalf("thumbprint %q vs %q", k.Thumbprint(), k2.Thumbprint())
	}
	if len(k.Thumbprint()) != 43 {
		t.Fatalf("thumbprint %q is not base64url SHA-256", k.Thumbprint())
	}
	// A proof by the parsed key verifies to the original thumbprint.
	proof, _ := k2.Proof("GET", "https://rs.example.test/api", "tok", "", t0)
	if jkt, err := Verify(proof, "GET", "https://rs.example.test/api", "tok", t0, time.Minute); err != nil || jkt != k.Thumbprint() {
		t.Fatalf("Verify = %q, %v", jkt, err)
	}
	if mustKey(t).Thumbprint() == k.Thumbprint() {
		t.Fatal("two new keys share a thumbprint")
	}
	if _, err := ParseKey([]byte("junk")); err == nil {
		t.Fatal("ParseKey accepted junk")
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	rder, _ := marshalAny(rk)
	if _, err := ParseKey(rder); err == nil {
		t.Fatal("ParseKey accepted an RSA key")
	}
}

func TestContextKey(t *testing.T) {
	if KeyFrom(context.Background()) != nil {
		t.Fatal("key in empty context")
	}
	k := mustKey(t)
	if KeyFrom(WithKey(context.Background(), k)) != k {
		t.Fatal("key not returned")
	}
}

// nonceServer is a token endpoint that demands a DPoP nonce (RFC 9449 §8)
// and records what it got.
type nonceServer struct {
	mu        sync.Mutex
	nonce     string
	proofs    []string
	bodies    []string
	nonces    []string // nonce claim of each proof ("" when none)
	challenge int
}

func (s *nonceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	s.bodies = append(s.bodies, string(body))
	proof := r.Header.Get("DPoP")
	s.proofs = append(s.proofs, proof)
	if proof == "" {
		w.Write([]byte(`{"token_type":"Bearer"}`))
		return
	}
	c, err := VerifyProof(proof, r.Method, "http://"+r.Host+r.URL.Path, "", t0, time.Minute)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_dpop_proof"}`))
		return
	}
	s.nonces = append(s.nonces, c.Nonce)
	if c.Nonce != s.nonce {
		s.challenge++
		w.Header().Set(NonceHeader, s.nonce)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"use_dpop_nonce"}`))
		return
	}
	w.Write([]byte(`{"token_type":"DPoP"}`))
}

func post(t *testing.T, c *http.Client, ctx context.Context, u string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestTransportNonceRetry(t *testing.T) {
	s := &nonceServer{nonce: "n-1"}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := &http.Client{Transport: NewTransport(srv.Client().Transport, func() time.Time { return t0 })}
	k := mustKey(t)
	ctx := WithKey(t.Context(), k)

	status, body := post(t, c, ctx, srv.URL+"/token?q=1", "grant_type=x")
	if status != http.StatusOK || !strings.Contains(body, "DPoP") {
		t.Fatalf("first request: %d %s", status, body)
	}
	if s.challenge != 1 || len(s.proofs) != 2 || s.nonces[0] != "" || s.nonces[1] != "n-1" {
		t.Fatalf("challenge=%d nonces=%q", s.challenge, s.nonces)
	}
	if s.bodies[0] != "grant_type=x" || s.bodies[1] != "grant_type=x" {
		t.Fatalf("bodies = %q", s.bodies)
	}

	// The nonce is remembered for the origin and sent proactively.
	post(t, c, ctx, srv.URL+"/token", "grant_type=y")
	if s.challenge != 1 || len(s.nonces) != 3 || s.nonces[2] != "n-1" {
		t.Fatalf("second request: challenge=%d nonces=%q", s.challenge, s.nonces)
	}

	// A new nonce from the server is answered with one retry.
	s.mu.Lock()
	s.nonce = "n-2"
	s.mu.Unlock()
	status, body = post(t, c, ctx, srv.URL+"/token", "grant_type=z")
	if status != http.StatusOK || s.challenge != 2 {
		t.Fatalf("rotated nonce: %d %s challenge=%d", status, body, s.challenge)
	}
}

func TestTransportRetriesOnce(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set(NonceHeader, "n-"+itoa(int64(calls)))
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"use_dpop_nonce"}`))
	}))
	defer srv.Close()
	c := &http.Client{Transport: NewTransport(srv.Client().Transport, func() time.Time { return t0 })}
	status, body := post(t, c, WithKey(t.Context(), mustKey(t)), srv.URL, "a=b")
	if calls != 2 || status != http.StatusBadRequest || !strings.Contains(body, "use_dpop_nonce") {
		t.Fatalf("calls=%d status=%d body=%s", calls, status, body)
	}
}

func TestTransportNoRetryForOtherErrors(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set(NonceHeader, "n")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant"}`))
	}))
	defer srv.Close()
	c := &http.Client{Transport: NewTransport(srv.Client().Transport, func() time.Time { return t0 })}
	status, body := post(t, c, WithKey(t.Context(), mustKey(t)), srv.URL, "a=b")
	if calls != 1 || status != http.StatusBadRequest || body != `{"error":"invalid_grant"}` {
		t.Fatalf("calls=%d status=%d body=%q", calls, status, body)
	}
}

func TestTransportOnlyWithKey(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("DPoP"))
	}))
	defer srv.Close()
	c := &http.Client{Transport: NewTransport(srv.Client().Transport, func() time.Time { return t0 })}
	post(t, c, t.Context(), srv.URL+"/token", "")
	k := mustKey(t)
	post(t, c, WithKey(t.Context(), k), srv.URL+"/token", "")
	if len(got) != 2 || got[0] != "" || got[1] == "" {
		t.Fatalf("DPoP headers = %q", got)
	}
	jkt, err := Verify(got[1], "POST", srv.URL+"/token", "", t0, time.Minute)
	if err != nil || jkt != k.Thumbprint() {
		t.Fatalf("proof: %q %v", jkt, err)
	}
	// The caller's request is not modified.
	req, _ := http.NewRequestWithContext(WithKey(t.Context(), k), "GET", srv.URL, nil)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if req.Header.Get("DPoP") != "" {
		t.Fatal("transport modified the caller's request")
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func marshalAny(k any) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k) }
