package hostileop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
)

func newDPoPKey(t *testing.T) *dpop.Key {
	t.Helper()
	k, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// dpopCtx returns a context whose oauth2 requests go through a DPoP
// transport on the test clock, signing with k.
func (r *rp) dpopCtx(k *dpop.Key, tr http.RoundTripper) context.Context {
	c := &http.Client{Transport: tr}
	return dpop.WithKey(context.WithValue(r.ctx, oauth2.HTTPClient, c), k)
}

func (r *rp) dpopTransport() http.RoundTripper {
	return dpop.NewTransport(r.p.client.Transport, r.clk.Now)
}

func TestDPoPDiscovery(t *testing.T) {
	r := newRP(t)
	if _, ok := discovery(t, r.p)["dpop_signing_alg_values_supported"]; ok {
		t.Fatal("DPoP advertised while off")
	}
	r.p.SetDPoP(true)
	got := discovery(t, r.p)["dpop_signing_alg_values_supported"]
	if !reflect.DeepEqual(got, []any{"ES256"}) {
		t.Fatalf("dpop_signing_alg_values_supported = %v", got)
	}
}

func TestDPoPBoundTokens(t *testing.T) {
	r := newRP(t)
	r.p.SetDPoP(true)
	k := newDPoPKey(t)
	tr := r.dpopTransport()

	a := r.authorize(t)
	tok, err := r.conf.Exchange(r.dpopCtx(k, tr), a.params.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.TokenType != "DPoP" {
		t.Fatalf("token_type = %q, want DPoP", tok.TokenType)
	}
	if jkt, ok := r.p.DPoPBinding(tok.AccessToken); !ok || jkt != k.Thumbprint() {
		t.Fatalf("binding = %q, %v; want %q", jkt, ok, k.Thumbprint())
	}
	_, hdr := r.p.LastTokenRequest()
	if hdr.Get("DPoP") == "" {
		t.Fatal("token request carried no DPoP header")
	}

	// A refresh with a proof by another key binds the new access token to
	// that key.
	k2 := newDPoPKey(t)
	ts := r.conf.TokenSource(r.dpopCtx(k2, tr), &oauth2.Token{RefreshToken: tok.RefreshToken})
	tok2, err := ts.Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if jkt, ok := r.p.DPoPBinding(tok2.AccessToken); tok2.TokenType != "DPoP" || !ok || jkt != k2.Thumbprint() {
		t.Fatalf("refreshed token type %q bound to %q (%v), want %q", tok2.TokenType, jkt, ok, k2.Thumbprint())
	}

	// A refresh without a proof gets a Bearer token.
	tok3, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("bearer refresh: %v", err)
	}
	if _, ok := r.p.DPoPBinding(tok3.AccessToken); tok3.TokenType != "Bearer" || ok {
		t.Fatalf("proof-less refresh: type %q bound %v", tok3.TokenType, ok)
	}

	// client_credentials with a proof is bound too.
	form := url.Values{"grant_type": {"client_credentials"}}
	res, body := tokenRequest(t, r, form, proofFor(t, r, k, "POST", r.p.URL+"/token", ""))
	if res.StatusCode != http.StatusOK || body["token_type"] != "DPoP" {
		t.Fatalf("client_credentials: %d %v", res.StatusCode, body)
	}
	if jkt, _ := r.p.DPoPBinding(body["access_token"].(string)); jkt != k.Thumbprint() {
		t.Fatalf("client_credentials bound to %q", jkt)
	}

	st := r.p.Stats()
	if st.DPoPProofs != 3 || st.DPoPNonceChallenges != 0 || st.TokenErrors != 0 {
		t.Fatalf("stats: proofs=%d challenges=%d errors=%d", st.DPoPProofs, st.DPoPNonceChallenges, st.TokenErrors)
	}
}

func TestDPoPOffIgnoresProofs(t *testing.T) {
	r := newRP(t)
	a := r.authorize(t)
	tok, err := r.conf.Exchange(r.dpopCtx(newDPoPKey(t), r.dpopTransport()), a.params.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if _, ok := r.p.DPoPBinding(tok.AccessToken); tok.TokenType != "Bearer" || ok {
		t.Fatalf("DPoP off: type %q bound %v", tok.TokenType, ok)
	}
	if r.p.Stats().DPoPProofs != 0 {
		t.Fatal("proof counted while DPoP is off")
	}
}

func TestDPoPNonceChallenge(t *testing.T) {
	r := newRP(t)
	r.p.SetDPoP(true)
	r.p.SetDPoPNonce(true)
	k := newDPoPKey(t)
	tr := r.dpopTransport()
	ctx := r.dpopCtx(k, tr)

	a := r.authorize(t)
	tok, err := r.conf.Exchange(ctx, a.params.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	st := r.p.Stats()
	if tok.TokenType != "DPoP" || st.DPoPNonceChallenges != 1 || st.DPoPProofs != 1 || st.CodeGrants != 1 || st.TokenErrors != 0 {
		t.Fatalf("type=%q stats=%+v", tok.TokenType, st)
	}

	// The transport remembered the nonce: no second challenge.
	tok, err = r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if st := r.p.Stats(); st.DPoPNonceChallenges != 1 || st.DPoPProofs != 2 || st.RefreshGrants != 1 {
		t.Fatalf("after refresh: %+v", st)
	}

	// A new nonce is demanded once.
	r.p.RotateDPoPNonce()
	if _, err := r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh after rotation: %v", err)
	}
	if st := r.p.Stats(); st.DPoPNonceChallenges != 2 || st.DPoPProofs != 3 || st.RefreshFailures != 0 {
		t.Fatalf("after rotation: %+v", st)
	}

	// The challenge itself: 400, use_dpop_nonce, DPoP-Nonce header.
	res, body := tokenRequest(t, r, url.Values{"grant_type": {"client_credentials"}}, proofFor(t, r, k, "POST", r.p.URL+"/token", ""))
	if res.StatusCode != http.StatusBadRequest || body["error"] != "use_dpop_nonce" || res.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("challenge: %d %v nonce=%q", res.StatusCode, body, res.Header.Get("DPoP-Nonce"))
	}
}

func TestDPoPInvalidProofs(t *testing.T) {
	r := newRP(t)
	r.p.SetDPoP(true)
	k := newDPoPKey(t)
	tokenURL := r.p.URL + "/token"
	replayed := proofFor(t, r, k, "POST", tokenURL, "")
	res, _ := tokenRequest(t, r, url.Values{"grant_type": {"client_credentials"}}, replayed)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("control request: %d", res.StatusCode)
	}
	stale, err := k.Proof("POST", tokenURL, "", "", r.clk.Now().Add(-2*DPoPProofMaxAge))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, proof string }{
		{"replayed jti", replayed},
		{"wrong htu", proofFor(t, r, k, "POST", r.p.URL+"/userinfo", "")},
		{"wrong htm", proofFor(t, r, k, "GET", tokenURL, "")},
		{"stale iat", stale},
		{"not a JWT", "garbage"},
	}
	a := r.authorize(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {a.params.Get("code")},
				"redirect_uri": {testRedirect}, "code_verifier": {a.verifier}}
			res, body := tokenRequest(t, r, form, tc.proof)
			if res.StatusCode != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
				t.Fatalf("got %d %v, want 400 invalid_dpop_proof", res.StatusCode, body)
			}
		})
	}
	// Rejected proofs did not consume the code.
	tok, err := r.conf.Exchange(r.dpopCtx(k, r.dpopTransport()), a.params.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("exchange after rejected proofs: %v", err)
	}
	if st := r.p.Stats(); st.TokenErrors != len(cases) || st.DPoPProofs != 2 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestDPoPUserinfo(t *testing.T) {
	r := newRP(t)
	r.p.SetDPoP(true)
	k := newDPoPKey(t)
	a := r.authorize(t)
	tok, err := r.conf.Exchange(r.dpopCtx(k, r.dpopTransport()), a.params.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	at := tok.AccessToken
	ui := r.p.URL + "/userinfo"
	good := proofFor(t, r, k, "GET", ui, at)
	cases := []struct {
		name, authz, proof string
		want               int
	}{
		{"bound token as Bearer", "Bearer " + at, "", http.StatusUnauthorized},
		{"DPoP scheme without proof", "DPoP " + at, "", http.StatusUnauthorized},
		{"proof without ath", "DPoP " + at, proofFor(t, r, k, "GET", ui, ""), http.StatusUnauthorized},
		{"proof by another key", "DPoP " + at, proofFor(t, r, newDPoPKey(t), "GET", ui, at), http.StatusUnauthorized},
		{"proof for the token endpoint", "DPoP " + at, proofFor(t, r, k, "GET", r.p.URL+"/token", at), http.StatusUnauthorized},
		{"valid", "DPoP " + at, good, http.StatusOK},
		{"replayed proof", "DPoP " + at, good, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := userinfoRequest(t, r, tc.authz, tc.proof)
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "DPoP ") {
				t.Fatalf("WWW-Authenticate = %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}

	// A Bearer token is refused under the DPoP scheme and accepted as Bearer.
	bearer, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if res := userinfoRequest(t, r, "DPoP "+bearer.AccessToken, proofFor(t, r, k, "GET", ui, bearer.AccessToken)); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Bearer token under DPoP scheme: %d", res.StatusCode)
	}
	if got := userinfoStatus(t, r.p, bearer.AccessToken); got != http.StatusOK {
		t.Fatalf("Bearer token: %d", got)
	}
}

func proofFor(t *testing.T, r *rp, k *dpop.Key, method, u, accessToken string) string {
	t.Helper()
	proof, err := k.Proof(method, u, accessToken, "", r.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return proof
}

// tokenRequest posts form to the token endpoint as the test client, with
// proof in the DPoP header when not empty.
func tokenRequest(t *testing.T, r *rp, form url.Values, proof string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.p.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testSecret)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	res, err := r.p.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	return res, body
}

func userinfoRequest(t *testing.T, r *rp, authz, proof string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.p.URL+"/userinfo", nil)
	req.Header.Set("Authorization", authz)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	res, err := r.p.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}
