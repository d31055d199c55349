package apiauth_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
)

// FuzzCheck presents arbitrary Authorization, DPoP and
// X-Gatehouse-Assertion header values. Check must never panic, and may
// accept only claims that the test itself signed: a mutated token, proof
// or assertion that still verifies would be a forgery.
//
//	go test -run '^$' -fuzz FuzzCheck ./apiauth
func FuzzCheck(f *testing.F) {
	s := newSigner(f)
	es := newKey(f, "es-1", jose.ES256)
	rs := newKey(f, "rs-1", jose.RS256)
	gw := newKey(f, "gw-1", jose.ES256)
	s.publish(es, rs)
	s.publishGateway(gw)
	key, err := dpop.NewKey()
	if err != nil {
		f.Fatal(err)
	}
	const url = "http://api.test/orders"

	var signed [][]byte // canonical JSON of every claim set the test signed
	remember := func(jws string) string {
		parts := strings.Split(jws, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			f.Fatal(err)
		}
		signed = append(signed, canonical(f, payload))
		return jws
	}
	bearerTok := remember(es.sign(f, "at+jwt", s.tokenClaims()))
	rsTok := remember(rs.sign(f, "at+jwt", s.tokenClaims()))
	bound := remember(es.sign(f, "at+jwt", with(s.tokenClaims(), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}})))
	assertion := remember(gw.sign(f, "JWT", s.assertionClaims()))
	proof, err := key.Proof("GET", url, bound, "", t0)
	if err != nil {
		f.Fatal(err)
	}

	f.Add("Bearer "+bearerTok, "", "")
	f.Add("Bearer "+rsTok, "", "")
	f.Add("DPoP "+bound, proof, "")
	f.Add("Bearer "+bound, proof, "")
	f.Add("", "", assertion)
	f.Add("Basic x", "", assertion)
	f.Add("DPoP "+bearerTok, proof, assertion)
	f.Add("Bearer eyJhbGciOiJub25lIn0.e30.", "", "eyJhbGciOiJub25lIn0.e30.")
	f.Add("bearer a.b.c", "x.y.z", "a.b")

	v := newVerifier(f, s, newClock(), nil)
	f.Fuzz(func(t *testing.T, authorization, proof, assertion string) {
		r := httptest.NewRequest(http.MethodGet, url, nil)
		if authorization != "" {
			r.Header["Authorization"] = []string{authorization}
		}
		if proof != "" {
			r.Header["Dpop"] = []string{proof}
		}
		if assertion != "" {
			r.Header["X-Gatehouse-Assertion"] = []string{assertion}
		}
		c, err := v.Check(r)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			return
		}
		b, merr := json.Marshal(c)
		if merr != nil {
			t.Fatal(merr)
		}
		got := canonical(t, b)
		for _, want := range signed {
			if bytes.Equal(got, want) {
				return
			}
		}
		t.Fatalf("accepted claims the test never signed: %s", got)
	})
}

// canonical re-encodes a JSON object with sorted keys and numbers as
// written.
func canonical(t testing.TB, b []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
