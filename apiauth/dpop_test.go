package apiauth_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-bff/gatehouse/apiauth"
	"github.com/gatehouse-bff/gatehouse/internal/dpop"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

var (
	invalidProof   = []string{`DPoP error="invalid_dpop_proof", algs="ES256 RS256 PS256 EdDSA"`}
	invalidDPoPTok = []string{`DPoP error="invalid_token", algs="ES256 RS256 PS256 EdDSA"`}
)

// dpopRequest is a request presenting token with the DPoP scheme and,
// unless proof is "", a DPoP header.
func dpopRequest(method, target, token string, proofs ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Authorization", "DPoP "+token)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

func mustProof(t testing.TB, k *dpop.Key, method, url, token string, at time.Time) string {
	t.Helper()
	p, err := k.Proof(method, url, token, "", at)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDPoP(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	key, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := dpop.NewKey()
	bound := es.sign(t, "at+jwt", with(s.tokenClaims(), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}))
	unbound := es.sign(t, "at+jwt", s.tokenClaims())
	const url = "http://api.test/orders"

	// A proof with typ JWT instead of dpop+jwt, otherwise right.
	wrongTyp := func() string {
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: newKey(t, "", jose.ES256).priv},
			(&jose.SignerOptions{EmbedJWK: true}).WithType("JWT"))
		p, _ := jwt.Signed(signer).Claims(map[string]any{"jti": "x", "htm": "GET", "htu": url, "iat": t0.Unix(), "ath": dpop.AccessTokenHash(bound)}).Serialize()
		return p
	}()

	tests := []struct {
		name      string
		req       func() *http.Request
		status    int
		challenge []string
	}{
		{name: "valid", status: 200, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, key, "GET", url, bound, t0))
		}},
		{name: "valid, query and fragment left out of htu", status: 200, req: func() *http.Request {
			return dpopRequest("GET", url+"?page=2", bound, mustProof(t, key, "GET", url+"?page=2#x", bound, t0))
		}},
		{name: "valid, iat 50 s old", status: 200, req: func() *http.Request {
			return dpopRequest("POST", url, bound, mustProof(t, key, "POST", url, bound, t0.Add(-50*time.Second)))
		}},
		{name: "wrong htm", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("DELETE", url, bound, mustProof(t, key, "GET", url, bound, t0))
		}},
		{name: "wrong htu path", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, key, "GET", "http://api.test/admin", bound, t0))
		}},
		{name: "wrong htu host", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, key, "GET", "http://evil.test/orders", bound, t0))
		}},
		{name: "wrong htu scheme", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, key, "GET", "https://api.test/orders", bound, t0))
		}},
		{name: "ath of another token", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, key, "GET", url, unbound, t0))
		}},
		{name: "ath missing", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, key, "GET", url, "", t0))
		}},
		{name: "stale iat", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, key, "GET", url, bound, t0.Add(-2*time.Minute)))
		}},
		{name: "iat in the future", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, key, "GET", url, bound, t0.Add(2*time.Minute)))
		}},
		{name: "proof key is not the token's", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, other, "GET", url, bound, t0))
		}},
		{name: "typ not dpop+jwt", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, wrongTyp)
		}},
		{name: "no proof", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound)
		}},
		{name: "two proofs", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, mustProof(t, key, "GET", url, bound, t0), mustProof(t, key, "GET", url, bound, t0))
		}},
		{name: "proof not a JWT", status: 401, challenge: invalidProof, req: func() *http.Request {
			return dpopRequest("GET", url, bound, "not-a-proof")
		}},
		{name: "bound token as Bearer, with a proof", status: 401, challenge: invalidToken, req: func() *http.Request {
			r := bearer(url, bound)
			r.Header.Set("DPoP", mustProof(t, key, "GET", url, bound, t0))
			return r
		}},
		{name: "unbound token with the DPoP scheme", status: 401, challenge: invalidDPoPTok, req: func() *http.Request {
			return dpopRequest("GET", url, unbound, mustProof(t, key, "GET", url, unbound, t0))
		}},
		{name: "invalid bound token", status: 401, challenge: invalidDPoPTok, req: func() *http.Request {
			return dpopRequest("GET", url, bound+"x", mustProof(t, key, "GET", url, bound+"x", t0))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, s, newClock(), nil)
			got := serve(v, tt.req())
			if got.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", got.status, tt.status, got.body)
			}
			if tt.status == 200 && got.sub != testSub {
				t.Errorf("handler saw %q", got.sub)
			}
			if tt.status != 200 && !slices.Equal(got.challenge, tt.challenge) {
				t.Errorf("WWW-Authenticate %q, want %q", got.challenge, tt.challenge)
			}
		})
	}
}

func TestDPoPReplay(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	key, _ := dpop.NewKey()
	bound := es.sign(t, "at+jwt", with(s.tokenClaims(), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}))
	const url = "http://api.test/orders"

	mem := memstore.New(memstore.Options{})
	t.Cleanup(func() { mem.Close() })
	for name, once := range map[string]func(*apiauth.Config){
		"default cache":     nil,
		"a Gatehouse store": func(c *apiauth.Config) { c.Once = mem.Once },
	} {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			v := newVerifier(t, s, clk, once)
			proof := mustProof(t, key, "GET", url, bound, t0)
			if got := serve(v, dpopRequest("GET", url, bound, proof)); got.status != 200 {
				t.Fatalf("first use: %d", got.status)
			}
			got := serve(v, dpopRequest("GET", url, bound, proof))
			if got.status != 401 || !slices.Equal(got.challenge, invalidProof) {
				t.Fatalf("replay: %d %q, want 401 invalid_dpop_proof", got.status, got.challenge)
			}
			clk.Advance(30 * time.Second)
			if got := serve(v, dpopRequest("GET", url, bound, proof)); got.status != 401 {
				t.Fatalf("replay 30 s later: %d, want 401", got.status)
			}
			if got := serve(v, dpopRequest("GET", url, bound, mustProof(t, key, "GET", url, bound, clk.Now()))); got.status != 200 {
				t.Fatalf("a fresh proof: %d, want 200", got.status)
			}
		})
	}
}

func TestDPoPPublicURL(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	key, _ := dpop.NewKey()
	bound := es.sign(t, "at+jwt", with(s.tokenClaims(), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}))
	v := newVerifier(t, s, newClock(), func(c *apiauth.Config) { c.PublicURL = "https://api.example.test/orders-api/" })

	// Behind a proxy that strips /orders-api and terminates TLS.
	const internal = "http://orders:8080/items/7"
	public := mustProof(t, key, "GET", "https://api.example.test/orders-api/items/7", bound, t0)
	if got := serve(v, dpopRequest("GET", internal, bound, public)); got.status != 200 {
		t.Fatalf("proof for the public URL: %d, want 200", got.status)
	}
	direct := mustProof(t, key, "GET", internal, bound, t0)
	if got := serve(v, dpopRequest("GET", internal, bound, direct)); got.status != 401 {
		t.Fatalf("proof for the internal URL: %d, want 401", got.status)
	}
}

func TestDPoPHTUFromTLSRequest(t *testing.T) {
	s := newSigner(t)
	es := newKey(t, "es-1", jose.ES256)
	s.publish(es)
	key, _ := dpop.NewKey()
	bound := es.sign(t, "at+jwt", with(s.tokenClaims(), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}))
	v := newVerifier(t, s, newClock(), nil)
	const url = "https://api.test/orders"
	r := dpopRequest("GET", url, bound, mustProof(t, key, "GET", url, bound, t0))
	if r.TLS == nil {
		t.Fatal("httptest request for an https URL has no TLS state")
	}
	if got := serve(v, r); got.status != 200 {
		t.Fatalf("status %d, want 200", got.status)
	}
}
