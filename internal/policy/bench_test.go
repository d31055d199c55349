package policy

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/assertion"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

// BenchmarkApply measures the per-request cost of a route's policy: the
// require checks alone, and with identity headers and a signed assertion.
func BenchmarkApply(b *testing.B) {
	signer, err := assertion.New(assertion.Options{Issuer: "https://app.example", Store: memstore.New(memstore.Options{}), Ring: seal.Ephemeral(), Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := signer.Sign(context.Background(), "https://api", "alice", nil); err != nil {
		b.Fatal(err)
	}
	require := config.Require{Claims: map[string][]string{"groups": {"admins", "ops"}}, Scopes: []string{"admin:write"}, ACR: []string{"urn:example:mfa"}, MaxAge: 15 * time.Minute}
	identity := config.Identity{Headers: map[string]string{"X-User-Id": "sub", "X-User-Email": "email", "X-Groups": "groups"}}
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"require", Options{Require: require}},
		{"require+headers", Options{Require: require, Identity: identity}},
		{"require+headers+assertion", Options{Require: require, Identity: config.Identity{Headers: identity.Headers, Assertion: true}, Audience: "https://api", Signer: signer}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.opts.Now = func() time.Time { return now }
			p, err := New(bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			s := alice()
			r := httptest.NewRequest("GET", "/api/x", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				var cred proxy.Credential
				if !p.Apply(w, r, s, &cred) {
					b.Fatal("refused")
				}
			}
		})
	}
}
