package hostileop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func discovery(t *testing.T, p *Provider) map[string]any {
	t.Helper()
	res, err := p.HTTPClient().Get(p.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestDiscoveryDocument(t *testing.T) {
	p := New(t)
	doc := discovery(t, p)
	for k, want := range map[string]any{
		"issuer":                 p.URL,
		"authorization_endpoint": p.URL + "/authorize",
		"token_endpoint":         p.URL + "/token",
		"jwks_uri":               p.URL + "/jwks",
		"userinfo_endpoint":      p.URL + "/userinfo",
		"revocation_endpoint":    p.URL + "/revoke",
		"end_session_endpoint":   p.URL + "/end_session",
		"authorization_response_iss_parameter_supported": true,
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
	} {
		if doc[k] != want {
			t.Errorf("%s = %v, want %v", k, doc[k], want)
		}
	}
	for k, want := range map[string][]any{
		"id_token_signing_alg_values_supported": {"RS256"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"code_challenge_methods_supported":      {"S256"},
		"grant_types_supported":                 {"authorization_code", "refresh_token", "client_credentials"},
		"prompt_values_supported":               {"none", "login", "consent", "select_account"},
	} {
		got, _ := doc[k].([]any)
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, doc[k], want)
		}
	}
}

func TestDiscoveryKnobs(t *testing.T) {
	p := New(t, WithSID(false))
	p.SetCodeChallengeMethods(nil)
	p.SetPromptValues([]string{"login"})
	p.SetRevocation(false)
	p.SetEndSession(false)
	doc := discovery(t, p)
	for _, k := range []string{"code_challenge_methods_supported", "revocation_endpoint", "end_session_endpoint"} {
		if _, ok := doc[k]; ok {
			t.Errorf("%s advertised: %v", k, doc[k])
		}
	}
	if got, _ := doc["prompt_values_supported"].([]any); !slices.Equal(got, []any{"login"}) {
		t.Errorf("prompt_values_supported = %v", doc["prompt_values_supported"])
	}
	if doc["backchannel_logout_session_supported"] != false {
		t.Errorf("backchannel_logout_session_supported = %v with WithSID(false)", doc["backchannel_logout_session_supported"])
	}
	for _, path := range []string{"/revoke", "/end_session"} {
		res, _ := postForm(t, p, path, url.Values{"token": {"x"}}, "", "")
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s when disabled: %d, want 404", path, res.StatusCode)
		}
	}
}

func TestIssParamModes(t *testing.T) {
	r := newRP(t)
	for _, tc := range []struct {
		mode       IssParam
		want       string // "" for absent
		advertised bool
	}{
		{IssParamCorrect, "self", true},
		{IssParamWrong, OtherIssuer, true},
		{IssParamMissing, "", true},
		{IssParamUnsupported, "", false},
		{IssParamUnadvertised, "self", false},
	} {
		r.p.SetIssParam(tc.mode)
		want := tc.want
		if want == "self" {
			want = r.p.URL
		}
		a := r.authorize(t)
		if got, ok := a.params["iss"]; (want == "") == ok || (ok && got[0] != want) {
			t.Errorf("mode %d: iss param %v, want %q", tc.mode, got, want)
		}
		if got := discovery(t, r.p)["authorization_response_iss_parameter_supported"]; got != tc.advertised {
			t.Errorf("mode %d: advertised %v, want %v", tc.mode, got, tc.advertised)
		}
	}
	// Error responses carry iss too (RFC 9207 §2).
	r.p.SetIssParam(IssParamWrong)
	r.p.SetAuthorizeError("access_denied")
	if a := r.authorize(t); a.params.Get("iss") != OtherIssuer {
		t.Errorf("error response iss = %q", a.params.Get("iss"))
	}
}

func TestAuthorizeScriptedError(t *testing.T) {
	r := newRP(t)
	r.p.SetAuthorizeError("access_denied")
	a := r.authorize(t)
	if a.params.Get("error") != "access_denied" || a.params.Get("state") != a.state || a.params.Has("code") {
		t.Errorf("authorization response %v", a.params)
	}
	r.p.SetAuthorizeError("")
	if a := r.authorize(t); !a.params.Has("code") {
		t.Errorf("after clearing the error: %v", a.params)
	}
}

func TestAuthorizeRequestChecks(t *testing.T) {
	r := newRP(t)
	base := func() url.Values {
		return url.Values{"client_id": {testClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"s"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
			"code_challenge_method": {"S256"}}
	}
	for _, tc := range []struct {
		name      string
		change    func(url.Values)
		wantError string // "" with wantStatus 400: no redirect at all
		status    int
	}{
		{"ok", func(url.Values) {}, "", http.StatusFound},
		{"unknown client", func(q url.Values) { q.Set("client_id", "nobody") }, "", http.StatusBadRequest},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", testRedirect+"/") }, "", http.StatusBadRequest},
		{"redirect prefix only", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1/bff/callback?x=1") }, "", http.StatusBadRequest},
		{"no pkce", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request", http.StatusFound},
		{"plain pkce", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request", http.StatusFound},
		{"implicit", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type", http.StatusFound},
		{"unsupported prompt", func(q url.Values) { q.Set("prompt", "create") }, "invalid_request", http.StatusFound},
		{"supported prompt", func(q url.Values) { q.Set("prompt", "login") }, "", http.StatusFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := base()
			tc.change(q)
			res, err := r.p.HTTPClient().Get(r.p.URL + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if res.StatusCode != http.StatusFound {
				return
			}
			loc, _ := url.Parse(res.Header.Get("Location"))
			got := loc.Query()
			if got.Get("error") != tc.wantError || got.Get("state") != "s" {
				t.Errorf("redirect query %v, want error %q", got, tc.wantError)
			}
			if (tc.wantError == "") != got.Has("code") {
				t.Errorf("code present = %v with error %q", got.Has("code"), got.Get("error"))
			}
		})
	}
}

func TestPKCEUnsupportedIgnoresChallenge(t *testing.T) {
	r := newRP(t)
	r.p.SetCodeChallengeMethods(nil)
	a := r.authorize(t)
	if _, err := r.conf.Exchange(r.ctx, a.params.Get("code"), oauth2.VerifierOption("not-the-verifier-"+a.verifier)); err != nil {
		t.Errorf("provider without PKCE checked the verifier: %v", err)
	}
}

func TestCodeReplayRejectedAndRevokesTokens(t *testing.T) {
	r := newRP(t)
	a := r.authorize(t)
	tok, err := r.conf.Exchange(r.ctx, a.params.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if userinfoStatus(t, r.p, tok.AccessToken) != http.StatusOK {
		t.Fatal("fresh access token rejected")
	}
	_, err = r.conf.Exchange(r.ctx, a.params.Get("code"), oauth2.VerifierOption(a.verifier))
	if code, _ := retrieveErrorCode(err); code != "invalid_grant" {
		t.Fatalf("replayed code: err = %v, want invalid_grant", err)
	}
	if userinfoStatus(t, r.p, tok.AccessToken) != http.StatusUnauthorized {
		t.Error("access token from a replayed code still accepted")
	}
	if _, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Error("refresh token from a replayed code still accepted")
	}
	if s := r.p.Stats(); s.CodeGrants != 2 || s.CodeReplays != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCodeGrantChecks(t *testing.T) {
	r := newRP(t)
	for _, tc := range []struct {
		name string
		opts func(a authResponse) []oauth2.AuthCodeOption
		conf func(c *oauth2.Config)
		want string
	}{
		{"wrong verifier", func(authResponse) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
		}, nil, "invalid_grant"},
		{"missing verifier", func(authResponse) []oauth2.AuthCodeOption { return nil }, nil, "invalid_grant"},
		{"other redirect_uri", func(a authResponse) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(a.verifier)}
		}, func(c *oauth2.Config) { c.RedirectURL = "http://127.0.0.1/elsewhere" }, "invalid_grant"},
		{"wrong secret", func(a authResponse) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(a.verifier)}
		}, func(c *oauth2.Config) { c.ClientSecret = "wrong" }, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r.authorize(t)
			conf := r.conf
			conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
			if tc.conf != nil {
				tc.conf(&conf)
			}
			_, err := conf.Exchange(r.ctx, a.params.Get("code"), tc.opts(a)...)
			if code, _ := retrieveErrorCode(err); code != tc.want {
				t.Errorf("err = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestClientAuthMethods(t *testing.T) {
	r := newRP(t)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		conf := r.conf
		conf.Endpoint.AuthStyle = style
		a := r.authorize(t)
		if _, err := conf.Exchange(r.ctx, a.params.Get("code"), oauth2.VerifierOption(a.verifier)); err != nil {
			t.Errorf("auth style %d: %v", style, err)
		}
		form, hdr := r.p.LastTokenRequest()
		if style == oauth2.AuthStyleInParams && (form.Get("client_secret") != testSecret || hdr.Get("Authorization") != "") {
			t.Errorf("client_secret_post request: form %v header %v", form, hdr)
		}
	}
	// Both methods at once is refused (RFC 6749 §2.3).
	res, body := postForm(t, r.p, "/token", url.Values{"grant_type": {"client_credentials"}, "client_secret": {testSecret}}, testClientID, testSecret)
	if res.StatusCode != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Errorf("two auth methods: %d %v", res.StatusCode, body)
	}
	res, body = postForm(t, r.p, "/token", url.Values{"grant_type": {"client_credentials"}}, testClientID, "wrong")
	if res.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_client" || res.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong basic secret: %d %v", res.StatusCode, body)
	}
}

func TestClientCredentials(t *testing.T) {
	r := newRP(t)
	cc := clientcredentials.Config{ClientID: testClientID, ClientSecret: testSecret, TokenURL: r.op.Endpoint().TokenURL, Scopes: []string{"api"}}
	tok, err := cc.Token(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken != "" || tok.Extra("id_token") != nil {
		t.Errorf("client credentials token %+v", tok)
	}
	if s := r.p.Stats(); s.ClientCredentialsGrants != 1 {
		t.Errorf("stats = %+v", s)
	}
	cc.ClientSecret = "wrong"
	if _, err := cc.Token(r.ctx); err == nil {
		t.Error("wrong client secret accepted")
	}
}

func refreshWith(r *rp, rt string) (*oauth2.Token, error) {
	return r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: rt}).Token()
}

func TestRefreshRotationAndReuseDetection(t *testing.T) {
	r := newRP(t)
	tok, _ := r.login(t)
	rt1 := tok.RefreshToken

	t2, err := refreshWith(r, rt1)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	if t2.RefreshToken == "" || t2.RefreshToken == rt1 || t2.AccessToken == tok.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", t2)
	}
	raw := rawIDToken(t, t2)
	if _, err := rpVerify(r.ctx, r.verifier, raw, "", "alice"); err != nil {
		t.Errorf("refreshed ID token rejected: %v", err)
	}
	t3, err := refreshWith(r, t2.RefreshToken)
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}

	// Replaying rt1 is reuse: invalid_grant, and the whole family dies.
	_, err = refreshWith(r, rt1)
	if code, status := retrieveErrorCode(err); code != "invalid_grant" || status != http.StatusBadRequest {
		t.Fatalf("reused refresh token: err = %v", err)
	}
	if _, err := refreshWith(r, t3.RefreshToken); err == nil {
		t.Error("latest refresh token still works after reuse was detected")
	}
	for _, at := range []string{tok.AccessToken, t2.AccessToken, t3.AccessToken} {
		if userinfoStatus(t, r.p, at) != http.StatusUnauthorized {
			t.Error("access token of a revoked family still accepted")
		}
	}
	if s := r.p.Stats(); s.RefreshGrants != 4 || s.RefreshFailures != 2 || s.RefreshReuses != 1 {
		t.Errorf("stats = %+v", s)
	}
	// Another login is a separate family and unaffected.
	other, _ := r.login(t)
	if _, err := refreshWith(r, other.RefreshToken); err != nil {
		t.Errorf("other family refresh: %v", err)
	}
}

func TestRefreshModes(t *testing.T) {
	r := newRP(t)
	tok, _ := r.login(t)
	rt := tok.RefreshToken

	r.p.SetRefreshMode(RefreshInvalidGrant)
	if code, status := retrieveErrorCode(func() error { _, err := refreshWith(r, rt); return err }()); code != "invalid_grant" || status != 400 {
		t.Errorf("RefreshInvalidGrant: %q %d", code, status)
	}
	r.p.SetRefreshMode(RefreshServerError)
	if code, status := retrieveErrorCode(func() error { _, err := refreshWith(r, rt); return err }()); code != "server_error" || status != 500 {
		t.Errorf("RefreshServerError: %q %d", code, status)
	}

	// Scripted failures did not consume the token.
	r.p.SetRefreshMode(RefreshNonRotating)
	for i := range 2 {
		got, err := refreshWith(r, rt)
		if err != nil {
			t.Fatalf("non-rotating refresh %d: %v", i, err)
		}
		// x/oauth2 keeps the old refresh token when the response has none.
		if got.RefreshToken != rt {
			t.Errorf("non-rotating refresh %d returned refresh token %q", i, got.RefreshToken)
		}
	}
	form, _ := r.p.LastTokenRequest()
	if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != rt {
		t.Errorf("LastTokenRequest = %v", form)
	}

	r.p.SetRefreshIDToken(false)
	r.p.SetRefreshMode(RefreshRotate)
	got, err := refreshWith(r, rt)
	if err != nil {
		t.Fatal(err)
	}
	if got.Extra("id_token") != nil {
		t.Error("id_token in refresh response with SetRefreshIDToken(false)")
	}

	// RefreshSlow outlasts a client deadline (an hour against none at all).
	r.p.SetRefreshMode(RefreshSlow)
	r.p.SetRefreshDelay(time.Hour)
	ctx, cancel := context.WithCancel(r.ctx)
	r.p.SetRefreshHook(func(context.Context) { cancel() })
	if _, err := r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: got.RefreshToken}).Token(); err == nil {
		t.Error("slow refresh answered before the client gave up")
	}
}

func TestRefreshHookHoldsRefreshInFlight(t *testing.T) {
	r := newRP(t)
	tok, _ := r.login(t)
	entered, release := make(chan struct{}), make(chan struct{})
	r.p.SetRefreshHook(func(ctx context.Context) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	done := make(chan error, 1)
	go func() { _, err := refreshWith(r, tok.RefreshToken); done <- err }()
	<-entered
	if s := r.p.Stats(); s.RefreshGrants != 1 {
		t.Errorf("refresh in flight: stats %+v", s)
	}
	select {
	case err := <-done:
		t.Fatalf("refresh finished while held: %v", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("released refresh: %v", err)
	}
}

func TestRevocation(t *testing.T) {
	r := newRP(t)
	tok, _ := r.login(t)

	// Wrong client secret: recorded, refused, token still alive.
	res, _ := postForm(t, r.p, "/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, testClientID, "wrong")
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoke with wrong secret: %d", res.StatusCode)
	}
	if _, err := refreshWith(r, tok.RefreshToken); err != nil {
		t.Fatalf("refresh token dead after refused revocation: %v", err)
	}
	tok, _ = r.login(t)

	res, _ = postForm(t, r.p, "/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, testClientID, testSecret)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if _, err := refreshWith(r, tok.RefreshToken); err == nil {
		t.Error("revoked refresh token still refreshes")
	}
	// RFC 7009 §2.1: the grant's access tokens go too.
	if userinfoStatus(t, r.p, tok.AccessToken) != http.StatusUnauthorized {
		t.Error("access token still valid after its refresh token was revoked")
	}

	// Access token revocation with client_secret_post; unknown tokens get 200.
	tok, _ = r.login(t)
	for _, token := range []string{tok.AccessToken, "never-issued"} {
		res, _ = postForm(t, r.p, "/revoke", url.Values{"token": {token}, "client_id": {testClientID}, "client_secret": {testSecret}}, "", "")
		if res.StatusCode != http.StatusOK {
			t.Errorf("revoke %q: %d", token, res.StatusCode)
		}
	}
	if userinfoStatus(t, r.p, tok.AccessToken) != http.StatusUnauthorized {
		t.Error("revoked access token still accepted")
	}
	if _, err := refreshWith(r, tok.RefreshToken); err != nil {
		t.Errorf("revoking an access token killed the refresh token: %v", err)
	}

	revs := r.p.Stats().Revocations
	want := []RevocationRequest{
		{Token: revs[0].Token, TypeHint: "refresh_token", ClientID: testClientID, ClientAuthOK: false},
		{Token: revs[1].Token, TypeHint: "refresh_token", ClientID: testClientID, ClientAuthOK: true},
		{Token: tok.AccessToken, ClientID: testClientID, ClientAuthOK: true},
		{Token: "never-issued", ClientID: testClientID, ClientAuthOK: true},
	}
	if !slices.Equal(revs, want) {
		t.Errorf("revocations = %+v, want %+v", revs, want)
	}
}

func TestUserinfo(t *testing.T) {
	r := newRP(t)
	tok, a := r.login(t)
	idt, err := rpVerify(r.ctx, r.verifier, rawIDToken(t, tok), a.nonce, "alice")
	if err != nil {
		t.Fatal(err)
	}
	r.p.SetUserinfoSub("mallory")
	ui, err := r.op.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	if ui.Subject != "mallory" || ui.Subject == idt.Subject {
		t.Errorf("userinfo sub %q, ID token sub %q", ui.Subject, idt.Subject)
	}
	if userinfoStatus(t, r.p, "hostileop-at-forged") != http.StatusUnauthorized {
		t.Error("unknown access token accepted")
	}

	// Access token lifetime follows the provider clock.
	r.p.SetUserinfoSub("")
	r.p.SetAccessTokenTTL(time.Minute)
	tok, _ = r.login(t)
	if tok.Extra("expires_in") != float64(60) {
		t.Errorf("expires_in = %v", tok.Extra("expires_in"))
	}
	if userinfoStatus(t, r.p, tok.AccessToken) != http.StatusOK {
		t.Error("fresh access token rejected")
	}
	r.clk.Advance(time.Minute)
	if userinfoStatus(t, r.p, tok.AccessToken) != http.StatusUnauthorized {
		t.Error("expired access token accepted")
	}
}

func TestSessionIDs(t *testing.T) {
	for _, withSID := range []bool{true, false} {
		r := newRP(t, WithSID(withSID))
		tok, _ := r.login(t)
		j := parseJWT(t, rawIDToken(t, tok))
		sid, ok := j.claims["sid"].(string)
		if ok != withSID || sid != r.p.LastSID() {
			t.Errorf("WithSID(%v): sid claim %q, LastSID %q", withSID, sid, r.p.LastSID())
		}
	}
}

func TestEndSession(t *testing.T) {
	r := newRP(t)
	tok, _ := r.login(t)
	raw := rawIDToken(t, tok)
	get := func(q url.Values) *http.Response {
		res, err := r.p.HTTPClient().Get(r.p.URL + "/end_session?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	var claims struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := r.op.Claims(&claims); err != nil || claims.EndSession != r.p.URL+"/end_session" {
		t.Fatalf("end_session_endpoint = %q, %v", claims.EndSession, err)
	}

	res := get(url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {testPostLogout}, "state": {"st"}})
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != testPostLogout+"?state=st" {
		t.Errorf("end_session: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res = get(url.Values{"client_id": {testClientID}, "post_logout_redirect_uri": {"http://127.0.0.1/evil"}})
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("unregistered post_logout_redirect_uri: %d", res.StatusCode)
	}
	res = get(url.Values{"id_token_hint": {"forged"}, "post_logout_redirect_uri": {testPostLogout}})
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown hint, no client_id: %d", res.StatusCode)
	}
	es := r.p.Stats().EndSessions
	if len(es) != 3 || !es[0].IDTokenHintKnown || es[0].Params.Get("state") != "st" || es[1].IDTokenHintKnown || es[2].IDTokenHintKnown {
		t.Errorf("end sessions = %+v", es)
	}
}
