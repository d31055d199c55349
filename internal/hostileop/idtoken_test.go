package hostileop

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

func TestValidCodeFlowVerifies(t *testing.T) {
	r := newRP(t)
	tok, a := r.login(t)
	raw := rawIDToken(t, tok)

	idt, err := rpVerify(r.ctx, r.verifier, raw, a.nonce, "alice")
	if err != nil {
		t.Fatalf("valid ID token rejected: %v", err)
	}
	var claims struct {
		SID   string `json:"sid"`
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.SID == "" || claims.SID != r.p.LastSID() {
		t.Errorf("sid = %q, want LastSID %q", claims.SID, r.p.LastSID())
	}
	if claims.Name != "Alice" || claims.Email != "alice@example.test" {
		t.Errorf("user claims = %+v", claims)
	}
	j := parseJWT(t, raw)
	if j.alg != "RS256" || j.kid != r.p.CurrentKeyID() || j.typ != "JWT" {
		t.Errorf("header alg=%q kid=%q typ=%q", j.alg, j.kid, j.typ)
	}

	// RFC 9207 iss parameter and the authorization request as sent.
	if got := a.params.Get("iss"); got != r.p.URL {
		t.Errorf("iss parameter = %q, want %q", got, r.p.URL)
	}
	q := r.p.LastAuthorize()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") != a.nonce || q.Get("state") != a.state || q.Get("code_challenge") == "" {
		t.Errorf("LastAuthorize = %v", q)
	}
	form, hdr := r.p.LastTokenRequest()
	if form.Get("grant_type") != "authorization_code" || form.Get("code_verifier") != a.verifier {
		t.Errorf("LastTokenRequest form = %v", form)
	}
	if !strings.HasPrefix(hdr.Get("Authorization"), "Basic ") {
		t.Errorf("token request Authorization = %q, want Basic", hdr.Get("Authorization"))
	}

	// Userinfo agrees with the ID token.
	ui, err := r.op.UserInfo(r.ctx, r.conf.TokenSource(r.ctx, tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Subject != "alice" || ui.Email != "alice@example.test" {
		t.Errorf("userinfo = %+v", ui)
	}

	// Tokens are opaque, recognisable, long and all recorded.
	issued := r.p.IssuedTokens()
	for _, v := range []string{tok.AccessToken, tok.RefreshToken, raw} {
		if !slices.Contains(issued, v) {
			t.Errorf("IssuedTokens lacks %q", v)
		}
	}
	if !strings.HasPrefix(tok.AccessToken, "hostileop-at-") || len(tok.AccessToken) < 32 {
		t.Errorf("access token %q not recognisable", tok.AccessToken)
	}
	if !strings.HasPrefix(tok.RefreshToken, "hostileop-rt-") || len(tok.RefreshToken) < 32 {
		t.Errorf("refresh token %q not recognisable", tok.RefreshToken)
	}
	s := r.p.Stats()
	if s.Authorize != 1 || s.CodeGrants != 1 || s.Userinfo != 1 || s.Discovery != 1 || s.JWKSFetches != 1 || s.TokenErrors != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestEveryDefectIsRejectedAndReallyPresent(t *testing.T) {
	r := newRP(t)
	p := r.p
	// Prime go-oidc's key cache with a valid token, as a running client has.
	tok, a := r.login(t)
	if _, err := rpVerify(r.ctx, r.verifier, rawIDToken(t, tok), a.nonce, "alice"); err != nil {
		t.Fatalf("valid token rejected: %v", err)
	}
	currentKid := p.CurrentKeyID()

	aud := func(j parsedJWT) []string {
		switch v := j.claims["aud"].(type) {
		case string:
			return []string{v}
		case []any:
			var out []string
			for _, x := range v {
				s, _ := x.(string)
				out = append(out, s)
			}
			return out
		}
		return nil
	}
	has := func(j parsedJWT, claim string) bool { _, ok := j.claims[claim]; return ok }

	cases := map[Defect]struct {
		sigOK bool // the signature verifies with a published key
		proof func(j parsedJWT, a authResponse) bool
	}{
		BadSignature: {false, func(j parsedJWT, a authResponse) bool {
			return j.alg == "RS256" && j.kid == currentKid && j.claims["iss"] == p.URL && j.claims["nonce"] == a.nonce
		}},
		WrongIssuer:         {true, func(j parsedJWT, _ authResponse) bool { return j.claims["iss"] == OtherIssuer }},
		IssuerTrailingSlash: {true, func(j parsedJWT, _ authResponse) bool { return j.claims["iss"] == p.URL+"/" }},
		IssuerMissing:       {true, func(j parsedJWT, _ authResponse) bool { return !has(j, "iss") }},
		WrongAudience: {true, func(j parsedJWT, _ authResponse) bool {
			return slices.Equal(aud(j), []string{OtherAudience})
		}},
		AudienceMissing: {true, func(j parsedJWT, _ authResponse) bool { return !has(j, "aud") }},
		MultipleAudiencesNoAzp: {true, func(j parsedJWT, _ authResponse) bool {
			return slices.Equal(aud(j), []string{testClientID, OtherAudience}) && !has(j, "azp")
		}},
		WrongAzp: {true, func(j parsedJWT, _ authResponse) bool {
			return slices.Contains(aud(j), testClientID) && len(aud(j)) == 2 && j.claims["azp"] == OtherAudience
		}},
		Expired: {true, func(j parsedJWT, _ authResponse) bool {
			exp, ok := j.claims["exp"].(float64)
			return ok && time.Unix(int64(exp), 0).Before(r.clk.Now())
		}},
		ExpMissing: {true, func(j parsedJWT, _ authResponse) bool { return !has(j, "exp") }},
		NonceMismatch: {true, func(j parsedJWT, a authResponse) bool {
			n, ok := j.claims["nonce"].(string)
			return ok && n != "" && n != a.nonce
		}},
		NonceMissing: {true, func(j parsedJWT, _ authResponse) bool { return !has(j, "nonce") }},
		SubMissing:   {true, func(j parsedJWT, _ authResponse) bool { return !has(j, "sub") }},
		DifferentSub: {true, func(j parsedJWT, _ authResponse) bool { return j.claims["sub"] == OtherSubject }},
		IatMissing:   {true, func(j parsedJWT, _ authResponse) bool { return !has(j, "iat") }},
		AlgNone: {false, func(j parsedJWT, _ authResponse) bool {
			return j.alg == "none" && len(j.sig) == 0 && j.claims["iss"] == p.URL
		}},
		HS256WithClientSecret: {false, func(j parsedJWT, _ authResponse) bool {
			_, err := j.jws.Verify([]byte(testSecret))
			return j.alg == "HS256" && j.kid == currentKid && err == nil
		}},
		UnknownKid: {false, func(j parsedJWT, _ authResponse) bool {
			return j.alg == "RS256" && j.kid != "" && j.kid != currentKid && !published(fetchJWKS(t, p), j.kid)
		}},
		WrongKidNoKey: {false, func(j parsedJWT, _ authResponse) bool {
			return j.alg == "RS256" && strings.HasPrefix(j.kid, "hostileop-unpublished-") && !published(fetchJWKS(t, p), j.kid)
		}},
	}

	for _, d := range Defects() {
		t.Run(d.String(), func(t *testing.T) {
			c, ok := cases[d]
			if !ok {
				t.Fatalf("no test case for defect %v", d)
			}
			p.SetDefect(d)
			defer p.SetDefect(Valid)
			tok, a := r.login(t)
			raw := rawIDToken(t, tok)

			if _, err := rpVerify(r.ctx, r.verifier, raw, a.nonce, "alice"); err == nil {
				t.Errorf("relying party accepted an ID token with defect %v", d)
			}
			j := parseJWT(t, raw)
			if got := verifiesWithJWKS(t, p, j); got != c.sigOK {
				t.Errorf("signature verifies with published key = %v, want %v", got, c.sigOK)
			}
			if !c.proof(j, a) {
				t.Errorf("defect %v not present: header alg=%q kid=%q claims=%v", d, j.alg, j.kid, j.claims)
			}
		})
	}

	// And the provider is well-behaved again once the defect is cleared.
	tok, a = r.login(t)
	if _, err := rpVerify(r.ctx, r.verifier, rawIDToken(t, tok), a.nonce, "alice"); err != nil {
		t.Fatalf("valid token after defects rejected: %v", err)
	}
}

func TestDefectAppliesToRefreshedIDToken(t *testing.T) {
	r := newRP(t)
	tok, _ := r.login(t)
	r.p.SetDefect(DifferentSub)
	// A token with only a refresh token makes the token source refresh.
	fresh, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	raw := rawIDToken(t, fresh)
	// OIDC Core §12.2: no nonce in a refreshed ID token; sub must not change.
	if _, err := rpVerify(r.ctx, r.verifier, raw, "", "alice"); err == nil {
		t.Error("refreshed ID token with a different sub accepted")
	}
	if j := parseJWT(t, raw); j.claims["sub"] != OtherSubject || j.claims["nonce"] != nil {
		t.Errorf("refreshed ID token claims = %v", j.claims)
	}
}

func TestUnknownKidAcceptedAfterRotationAndRefetch(t *testing.T) {
	r := newRP(t)
	p := r.p
	tok, a := r.login(t)
	oldRaw := rawIDToken(t, tok)
	if _, err := rpVerify(r.ctx, r.verifier, oldRaw, a.nonce, "alice"); err != nil {
		t.Fatalf("valid token rejected: %v", err)
	}
	oldKid := p.CurrentKeyID()

	p.SetDefect(UnknownKid)
	tok, a = r.login(t)
	p.SetDefect(Valid)
	early := rawIDToken(t, tok)
	if _, err := rpVerify(r.ctx, r.verifier, early, a.nonce, "alice"); err == nil {
		t.Fatal("token signed with an unpublished key accepted before rotation")
	}

	p.RotateKeys()
	newKid := p.CurrentKeyID()
	if j := parseJWT(t, early); j.kid != newKid || newKid == oldKid {
		t.Fatalf("UnknownKid token kid %q, rotated-in kid %q, old %q", j.kid, newKid, oldKid)
	}
	before := p.Stats().JWKSFetches
	if _, err := rpVerify(r.ctx, r.verifier, early, a.nonce, "alice"); err != nil {
		t.Fatalf("after rotation, token with the new kid rejected: %v", err)
	}
	if got := p.Stats().JWKSFetches; got != before+1 {
		t.Errorf("JWKS fetches %d → %d, want one refetch for the unknown kid", before, got)
	}

	// Tokens signed after rotation carry the new kid; the old key stays
	// published until retired.
	tok, a = r.login(t)
	if j := parseJWT(t, rawIDToken(t, tok)); j.kid != newKid {
		t.Errorf("token after rotation kid %q, want %q", j.kid, newKid)
	}
	if _, err := rpVerify(r.ctx, r.verifier, rawIDToken(t, tok), a.nonce, "alice"); err != nil {
		t.Errorf("token after rotation rejected: %v", err)
	}
	set := fetchJWKS(t, p)
	if !published(set, oldKid) || !published(set, newKid) {
		t.Errorf("JWKS after rotation lacks old or new kid: %v", set.Keys)
	}
	p.RetireOldKeys()
	if published(fetchJWKS(t, p), oldKid) {
		t.Error("retired key still published")
	}
	fresh := oidc.NewVerifier(p.URL, oidc.NewRemoteKeySet(r.ctx, p.URL+"/jwks"), &oidc.Config{ClientID: testClientID, Now: r.clk.Now})
	if _, err := fresh.Verify(r.ctx, oldRaw); err == nil {
		t.Error("token signed with a retired key accepted by a fresh verifier")
	}
}

func TestNoKidAndExtraKeys(t *testing.T) {
	r := newRP(t)
	r.p.SetNoKid(true)
	for _, extra := range []int{0, 3} {
		r.p.SetExtraKeys(extra)
		tok, a := r.login(t)
		raw := rawIDToken(t, tok)
		if j := parseJWT(t, raw); j.kid != "" {
			t.Errorf("extra=%d: kid %q present with SetNoKid(true)", extra, j.kid)
		}
		if n := len(fetchJWKS(t, r.p).Keys); n != 1+extra {
			t.Errorf("extra=%d: JWKS has %d keys", extra, n)
		}
		// go-oidc tries every published key when there is no kid.
		if _, err := rpVerify(r.ctx, r.verifier, raw, a.nonce, "alice"); err != nil {
			t.Errorf("extra=%d: token without kid rejected: %v", extra, err)
		}
	}
}

func TestMintIDToken(t *testing.T) {
	r := newRP(t)
	raw := r.p.MintIDToken("n-1")
	if _, err := rpVerify(r.ctx, r.verifier, raw, "n-1", "alice"); err != nil {
		t.Fatalf("minted token rejected: %v", err)
	}
	r.p.SetDefect(Expired)
	raw = r.p.MintIDToken("n-2")
	_, err := r.verifier.Verify(r.ctx, raw)
	if _, ok := err.(*oidc.TokenExpiredError); !ok {
		t.Errorf("expired minted token: err = %v, want *oidc.TokenExpiredError", err)
	}
}

func TestDiscoveryIssuerMismatchRejected(t *testing.T) {
	r := newRP(t)
	r.p.SetDiscoveryIssuer("https://elsewhere.example")
	if _, err := oidc.NewProvider(r.ctx, r.p.URL); err == nil {
		t.Error("discovery naming another issuer accepted")
	}
	r.p.SetDiscoveryIssuer("")
	if _, err := oidc.NewProvider(r.ctx, r.p.URL); err != nil {
		t.Errorf("restored discovery rejected: %v", err)
	}
}

func TestJWKSPublishesRS256SigningKeys(t *testing.T) {
	p := New(t)
	for _, k := range fetchJWKS(t, p).Keys {
		if !k.IsPublic() || k.Algorithm != string(jose.RS256) || k.Use != "sig" || k.KeyID == "" {
			t.Errorf("published key %+v", k)
		}
	}
}
