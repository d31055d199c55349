package apiauth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
)

// BenchmarkCheck measures the per-request cost of Check with the key sets
// already fetched: one signature verification for a bearer token or an
// assertion, two (token and proof) plus the replay cache for DPoP.
//
//	go test -run '^$' -bench . -benchmem ./apiauth
func BenchmarkCheck(b *testing.B) {
	s := newSigner(b)
	es := newKey(b, "es-1", jose.ES256)
	rs := newKey(b, "rs-1", jose.RS256)
	gw := newKey(b, "gw-1", jose.ES256)
	s.publish(es, rs)
	s.publishGateway(gw)
	key, err := dpop.NewKey()
	if err != nil {
		b.Fatal(err)
	}
	const url = "http://api.test/orders"
	bound := es.sign(b, "at+jwt", with(s.tokenClaims(), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}))

	run := func(b *testing.B, req func(i int) *http.Request) {
		v := newVerifier(b, s, newClock(), nil)
		if _, err := v.Check(req(-1)); err != nil { // fetch the keys
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := v.Check(req(i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		key  *signingKey
	}{{"bearer-ES256", es}, {"bearer-RS256", rs}} {
		b.Run(tc.name, func(b *testing.B) {
			r := bearer(url, tc.key.sign(b, "at+jwt", s.tokenClaims()))
			run(b, func(int) *http.Request { return r })
		})
	}
	b.Run("dpop-ES256", func(b *testing.B) {
		// Every request needs a proof of its own; they are made before
		// the timer starts.
		proofs := make([]*http.Request, b.N+1)
		for i := range proofs {
			p, err := key.Proof("GET", url, bound, "", t0)
			if err != nil {
				b.Fatal(err)
			}
			proofs[i] = dpopRequest("GET", url, bound, p)
		}
		run(b, func(i int) *http.Request { return proofs[i+1] })
	})
	// The signature check alone, for scale: what the bearer and assertion
	// paths cannot do without.
	b.Run("reference-jws-verify-ES256", func(b *testing.B) {
		raw := es.sign(b, "at+jwt", s.tokenClaims())
		pub := es.priv.Public()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := jws.Verify(pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("assertion-ES256", func(b *testing.B) {
		r := httptest.NewRequest(http.MethodGet, url, nil)
		r.Header.Set("X-Gatehouse-Assertion", gw.sign(b, "JWT", s.assertionClaims()))
		run(b, func(int) *http.Request { return r })
	})
}
