package devprovider_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider/devprovidertest"
)

const (
	clientID       = "gatehouse"
	clientSecret   = "gatehouse-secret"
	postClientID   = "post-client"
	plainClientID  = "no-refresh"
	publicClientID = "public"
	serviceID      = "service"
	serviceSecret  = "service-secret"
	redirectURI    = "http://127.0.0.1:1/bff/callback"
	postLogoutURI  = "http://127.0.0.1:1/signed-out"
	defaultScopes  = "openid profile email offline_access"
	callbackPrefix = "http://127.0.0.1:1/"
)

func testClients() []devprovider.Client {
	return []devprovider.Client{
		{ID: clientID, Secret: clientSecret, RedirectURIs: []string{redirectURI}, PostLogoutRedirectURIs: []string{postLogoutURI}},
		{ID: postClientID, Secret: clientSecret, RedirectURIs: []string{redirectURI}, AuthMethod: devprovider.AuthMethodPost},
		{ID: plainClientID, Secret: clientSecret, RedirectURIs: []string{redirectURI}, GrantTypes: []string{devprovider.GrantAuthorizationCode}},
		{ID: serviceID, Secret: serviceSecret, GrantTypes: []string{devprovider.GrantClientCredentials}},
		{ID: publicClientID, RedirectURIs: []string{redirectURI}, AuthMethod: devprovider.AuthMethodNone},
	}
}

// rp is a relying party driving the provider as Gatehouse would: go-oidc
// for discovery and ID token verification, x/oauth2 for the token endpoint,
// and an http.Client with a cookie jar as the browser.
type rp struct {
	t        *testing.T
	p        *devprovider.Provider
	srv      *httptest.Server
	ctx      context.Context
	provider *oidc.Provider
	browser  *http.Client
}

func newRP(t *testing.T, opts devprovider.Options) *rp {
	t.Helper()
	if opts.Clients == nil {
		opts.Clients = testClients()
	}
	p, srv := devprovidertest.NewTestServer(t, opts)
	ctx := oidc.ClientContext(t.Context(), srv.Client())
	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), callbackPrefix) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return &rp{t: t, p: p, srv: srv, ctx: ctx, provider: provider, browser: browser}
}

func (c *rp) config(id string) *oauth2.Config {
	cfg := &oauth2.Config{
		ClientID:     id,
		ClientSecret: clientSecret,
		Endpoint:     c.provider.Endpoint(),
		RedirectURL:  redirectURI,
		Scopes:       strings.Fields(defaultScopes),
	}
	switch id {
	case postClientID:
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	case publicClientID:
		cfg.ClientSecret = ""
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	default:
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	}
	return cfg
}

func (c *rp) verifier(id string) *oidc.IDTokenVerifier {
	return c.provider.Verifier(&oidc.Config{ClientID: id})
}

// authTx is one authorization request's per-transaction secrets.
type authTx struct {
	clientID, state, nonce, verifier string
}

func newTx(id string) authTx {
	return authTx{clientID: id, state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
}

// authorize navigates the browser to the authorization endpoint with PKCE
// S256 and returns the response where redirects stopped: the relying
// party's callback or a provider page.
func (c *rp) authorize(tx authTx, extra ...oauth2.AuthCodeOption) *http.Response {
	c.t.Helper()
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(tx.nonce), oauth2.S256ChallengeOption(tx.verifier)}, extra...)
	return c.get(c.config(tx.clientID).AuthCodeURL(tx.state, opts...))
}

func (c *rp) get(u string) *http.Response {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, u, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

func (c *rp) do(req *http.Request) *http.Response {
	c.t.Helper()
	resp, err := c.browser.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// callback returns the authorization response parameters, failing unless
// resp redirects to the relying party with the transaction's state and the
// RFC 9207 iss.
func (c *rp) callback(resp *http.Response, tx authTx) url.Values {
	c.t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, redirectURI+"?") {
		body, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("want redirect to %s, got %d Location=%q body=%.300s", redirectURI, resp.StatusCode, loc, body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		c.t.Fatal(err)
	}
	q := u.Query()
	if got := q.Get("state"); got != tx.state {
		c.t.Errorf("state = %q, want %q", got, tx.state)
	}
	if got := q.Get("iss"); got != c.srv.URL {
		c.t.Errorf("iss parameter = %q, want %q", got, c.srv.URL)
	}
	return q
}

// submitLogin posts the login form that resp shows.
func (c *rp) submitLogin(resp *http.Response, username, password string) *http.Response {
	c.t.Helper()
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || id == "" {
		c.t.Fatalf("want the login form, got %d at %s", resp.StatusCode, resp.Request.URL)
	}
	form := url.Values{"authRequestID": {id}, "username": {username}, "password": {password}}
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.srv.URL+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

type idClaims struct {
	Sub           string `json:"sub"`
	Nonce         string `json:"nonce"`
	AuthTime      int64  `json:"auth_time"`
	IssuedAt      int64  `json:"iat"`
	Sid           string `json:"sid"`
	Name          string `json:"name"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
}

// exchange redeems code and verifies the ID token with go-oidc.
func (c *rp) exchange(tx authTx, code string) (*oauth2.Token, *oidc.IDToken, idClaims) {
	c.t.Helper()
	tok, err := c.config(tx.clientID).Exchange(c.ctx, code, oauth2.VerifierOption(tx.verifier))
	if err != nil {
		c.t.Fatalf("exchange: %v", err)
	}
	idt, claims := c.verifyIDToken(tx.clientID, tok)
	if idt.Nonce != tx.nonce {
		c.t.Errorf("nonce = %q, want %q", idt.Nonce, tx.nonce)
	}
	return tok, idt, claims
}

func (c *rp) verifyIDToken(id string, tok *oauth2.Token) (*oidc.IDToken, idClaims) {
	c.t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verifier(id).Verify(c.ctx, raw)
	if err != nil {
		c.t.Fatalf("verify ID token: %v", err)
	}
	var claims idClaims
	if err := idt.Claims(&claims); err != nil {
		c.t.Fatal(err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		c.t.Errorf("at_hash: %v", err)
	}
	return idt, claims
}

// login runs a whole code flow with AutoLogin or the form and returns the
// tokens.
func (c *rp) login(id, username string, extra ...oauth2.AuthCodeOption) (*oauth2.Token, idClaims) {
	c.t.Helper()
	tx := newTx(id)
	resp := c.authorize(tx, extra...)
	if resp.StatusCode == http.StatusOK {
		resp = c.submitLogin(resp, username, username)
	}
	q := c.callback(resp, tx)
	tok, _, claims := c.exchange(tx, q.Get("code"))
	return tok, claims
}

func (c *rp) refresh(id, refreshToken string) (*oauth2.Token, error) {
	return c.config(id).TokenSource(c.ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want OAuth error %q", err, code)
	}
	if re.ErrorCode != code {
		t.Fatalf("error code = %q (%v), want %q", re.ErrorCode, err, code)
	}
}

func TestDiscovery(t *testing.T) {
	c := newRP(t, devprovider.Options{})
	var doc struct {
		Issuer              string   `json:"issuer"`
		JWKSURI             string   `json:"jwks_uri"`
		Revocation          string   `json:"revocation_endpoint"`
		EndSession          string   `json:"end_session_endpoint"`
		UserInfo            string   `json:"userinfo_endpoint"`
		PKCE                []string `json:"code_challenge_methods_supported"`
		Prompts             []string `json:"prompt_values_supported"`
		ResponseTypes       []string `json:"response_types_supported"`
		GrantTypes          []string `json:"grant_types_supported"`
		SigningAlgs         []string `json:"id_token_signing_alg_values_supported"`
		ISSParameter        bool     `json:"authorization_response_iss_parameter_supported"`
		DeviceAuthorization *string  `json:"device_authorization_endpoint"`
	}
	if err := c.provider.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != c.srv.URL {
		t.Errorf("issuer = %q, want %q", doc.Issuer, c.srv.URL)
	}
	for name, v := range map[string]string{"jwks_uri": doc.JWKSURI, "revocation_endpoint": doc.Revocation, "end_session_endpoint": doc.EndSession, "userinfo_endpoint": doc.UserInfo} {
		if !strings.HasPrefix(v, c.srv.URL+"/") {
			t.Errorf("%s = %q, want an URL under the issuer", name, v)
		}
	}
	if !slices.Equal(doc.PKCE, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v, want [S256]", doc.PKCE)
	}
	if !slices.Contains(doc.Prompts, "none") || !slices.Contains(doc.Prompts, "login") {
		t.Errorf("prompt_values_supported = %v, want none and login", doc.Prompts)
	}
	if !slices.Equal(doc.ResponseTypes, []string{"code"}) {
		t.Errorf("response_types_supported = %v, want [code]", doc.ResponseTypes)
	}
	for _, g := range []string{"authorization_code", "refresh_token", "client_credentials"} {
		if !slices.Contains(doc.GrantTypes, g) {
			t.Errorf("grant_types_supported = %v, missing %s", doc.GrantTypes, g)
		}
	}
	if !slices.Equal(doc.SigningAlgs, []string{"RS256"}) {
		t.Errorf("id_token_signing_alg_values_supported = %v, want [RS256]", doc.SigningAlgs)
	}
	if !doc.ISSParameter {
		t.Error("authorization_response_iss_parameter_supported = false, want true")
	}
	if doc.DeviceAuthorization != nil {
		t.Errorf("device_authorization_endpoint = %q, want absent", *doc.DeviceAuthorization)
	}

	resp := c.get(doc.JWKSURI)
	var jwks struct {
		Keys []struct {
			Kty, Kid, Alg, Use string
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "RSA" || jwks.Keys[0].Alg != "RS256" || jwks.Keys[0].Use != "sig" || jwks.Keys[0].Kid == "" {
		t.Errorf("jwks = %+v, want one RS256 signing key with a kid", jwks.Keys)
	}
}

func TestDiscoveryWithoutIssParameter(t *testing.T) {
	c := newRP(t, devprovider.Options{SkipIssParameter: true, AutoLogin: "alice"})
	var doc struct {
		ISSParameter bool `json:"authorization_response_iss_parameter_supported"`
	}
	if err := c.provider.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.ISSParameter {
		t.Error("authorization_response_iss_parameter_supported = true, want false")
	}
	resp := c.authorize(newTx(clientID))
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Has("iss") || !u.Query().Has("code") {
		t.Errorf("callback = %s, want a code and no iss", u)
	}
}

func TestCodeFlowWithLoginForm(t *testing.T) {
	for _, id := range []string{clientID, postClientID, publicClientID} {
		t.Run(id, func(t *testing.T) {
			c := newRP(t, devprovider.Options{})
			tx := newTx(id)
			resp := c.authorize(tx)
			body, _ := io.ReadAll(resp.Body)
			for _, want := range []string{`id="username"`, `id="password"`, `id="submit"`, "Development provider", "never use it in production"} {
				if !strings.Contains(string(body), want) {
					t.Errorf("login page lacks %q", want)
				}
			}

			bad := c.submitLogin(resp, "alice", "wrong")
			body, _ = io.ReadAll(bad.Body)
			if bad.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Wrong username or password") {
				t.Fatalf("wrong password: status %d, want 401 with an error message", bad.StatusCode)
			}
			q := c.callback(c.submitLogin(resp, "alice", "alice"), tx)
			tok, idt, claims := c.exchange(tx, q.Get("code"))

			if idt.Issuer != c.srv.URL || idt.Subject != "alice" || !slices.Equal(idt.Audience, []string{id}) {
				t.Errorf("iss/sub/aud = %q/%q/%v", idt.Issuer, idt.Subject, idt.Audience)
			}
			if claims.Sid == "" || claims.AuthTime == 0 || claims.IssuedAt == 0 {
				t.Errorf("sid/auth_time/iat missing: %+v", claims)
			}
			if claims.Name != "Alice Example" || claims.Email != "alice@example.com" || !claims.EmailVerified {
				t.Errorf("profile/email claims = %+v", claims)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh token for offline_access")
			}

			info, err := c.provider.UserInfo(c.ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if info.Subject != "alice" || info.Email != "alice@example.com" {
				t.Errorf("userinfo = %+v", info)
			}

			st := c.p.Stats()
			if st.AuthorizeRequests != 1 || st.Logins != 1 || st.FailedLogins != 1 || st.CodeGrants != 1 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestProviderSession(t *testing.T) {
	c := newRP(t, devprovider.Options{})
	_, first := c.login(clientID, "bob")

	// A second authorization in the same browser reuses the provider session.
	tx := newTx(clientID)
	q := c.callback(c.authorize(tx), tx)
	_, _, again := c.exchange(tx, q.Get("code"))
	if again.Sid != first.Sid || again.AuthTime != first.AuthTime || again.Sub != "bob" {
		t.Errorf("reused session: got sid %q auth_time %d, want %q %d", again.Sid, again.AuthTime, first.Sid, first.AuthTime)
	}

	// prompt=login always shows the form, and signing in starts a new session.
	tx = newTx(clientID)
	resp := c.authorize(tx, oauth2.SetAuthURLParam("prompt", "login"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("prompt=login: status %d, want the login form", resp.StatusCode)
	}
	q = c.callback(c.submitLogin(resp, "bob", "bob"), tx)
	_, _, fresh := c.exchange(tx, q.Get("code"))
	if fresh.Sid == first.Sid {
		t.Error("prompt=login kept the old sid")
	}
	if st := c.p.Stats(); st.Logins != 2 {
		t.Errorf("Logins = %d, want 2", st.Logins)
	}
}

func TestPromptNone(t *testing.T) {
	c := newRP(t, devprovider.Options{})
	tx := newTx(clientID)
	q := c.callback(c.authorize(tx, oauth2.SetAuthURLParam("prompt", "none")), tx)
	if q.Get("error") != "login_required" || q.Has("code") {
		t.Fatalf("prompt=none without a session: %v, want error=login_required", q)
	}

	c.login(clientID, "alice")
	tx = newTx(clientID)
	q = c.callback(c.authorize(tx, oauth2.SetAuthURLParam("prompt", "none")), tx)
	if !q.Has("code") {
		t.Fatalf("prompt=none with a session: %v, want a code", q)
	}
	if _, _, claims := c.exchange(tx, q.Get("code")); claims.Sub != "alice" {
		t.Errorf("sub = %q, want alice", claims.Sub)
	}
}

func TestAutoLogin(t *testing.T) {
	c := newRP(t, devprovider.Options{AutoLogin: "bob"})
	_, claims := c.login(clientID, "")
	if claims.Sub != "bob" || claims.Sid == "" {
		t.Fatalf("auto-login claims = %+v, want sub bob with a sid", claims)
	}

	if err := c.p.SetAutoLogin("nobody"); err == nil {
		t.Error("SetAutoLogin accepted an unknown user")
	}
	if err := c.p.SetAutoLogin(""); err != nil {
		t.Fatal(err)
	}
	c.browser.Jar, _ = cookiejar.New(nil)
	if resp := c.authorize(newTx(clientID)); resp.StatusCode != http.StatusOK {
		t.Errorf("auto-login off: status %d, want the login form", resp.StatusCode)
	}
}

func TestPKCE(t *testing.T) {
	c := newRP(t, devprovider.Options{AutoLogin: "alice"})

	t.Run("authorization request without PKCE", func(t *testing.T) {
		tx := newTx(clientID)
		resp := c.get(c.config(clientID).AuthCodeURL(tx.state, oidc.Nonce(tx.nonce)))
		if q := c.callback(resp, tx); q.Get("error") != "invalid_request" {
			t.Errorf("callback = %v, want error=invalid_request", q)
		}
	})
	t.Run("plain method", func(t *testing.T) {
		tx := newTx(clientID)
		resp := c.get(c.config(clientID).AuthCodeURL(tx.state,
			oauth2.SetAuthURLParam("code_challenge", tx.verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
		if q := c.callback(resp, tx); q.Get("error") != "invalid_request" {
			t.Errorf("callback = %v, want error=invalid_request", q)
		}
	})

	cases := []struct {
		name     string
		verifier func(authTx) []oauth2.AuthCodeOption
		want     string
	}{
		{"wrong verifier", func(authTx) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
		}, "invalid_grant"},
		{"missing verifier", func(authTx) []oauth2.AuthCodeOption { return nil }, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := newTx(clientID)
			code := c.callback(c.authorize(tx), tx).Get("code")
			_, err := c.config(clientID).Exchange(c.ctx, code, tc.verifier(tx)...)
			wantOAuthError(t, err, tc.want)
			// The failed attempt spent the code.
			_, err = c.config(clientID).Exchange(c.ctx, code, oauth2.VerifierOption(tx.verifier))
			wantOAuthError(t, err, "invalid_grant")
		})
	}
}

func TestCodeReplayRevokesTokens(t *testing.T) {
	c := newRP(t, devprovider.Options{AutoLogin: "alice"})
	tx := newTx(clientID)
	code := c.callback(c.authorize(tx), tx).Get("code")
	tok, _, _ := c.exchange(tx, code)

	_, err := c.config(clientID).Exchange(c.ctx, code, oauth2.VerifierOption(tx.verifier))
	wantOAuthError(t, err, "invalid_grant")
	_, err = c.refresh(clientID, tok.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
}

func TestRefreshRotation(t *testing.T) {
	c := newRP(t, devprovider.Options{AutoLogin: "alice"})
	tok, first := c.login(clientID, "")

	next, err := c.refresh(clientID, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not rotate the refresh token")
	}
	_, claims := c.verifyIDToken(clientID, next)
	if claims.Sub != first.Sub || claims.Sid != first.Sid || claims.AuthTime != first.AuthTime {
		t.Errorf("refreshed ID token = %+v, want sub, sid and auth_time of %+v", claims, first)
	}

	// Replaying the rotated token fails and revokes the family (RFC 9700 §4.14.2).
	_, err = c.refresh(clientID, tok.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	_, err = c.refresh(clientID, next.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if _, err := c.provider.UserInfo(c.ctx, oauth2.StaticTokenSource(next)); err == nil {
		t.Error("access token still works after the family was revoked")
	}

	st := c.p.Stats()
	if st.RefreshGrants != 1 || st.RefreshReuseRejected != 1 {
		t.Errorf("stats = %+v, want 1 refresh grant and 1 reuse rejected", st)
	}
}

func TestRefreshTokenIssuance(t *testing.T) {
	c := newRP(t, devprovider.Options{AutoLogin: "alice"})
	cases := []struct {
		name, client, scope string
		want                bool
	}{
		{"offline_access and grant", clientID, defaultScopes, true},
		{"no offline_access", clientID, "openid profile", false},
		{"client without refresh grant", plainClientID, defaultScopes, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, _ := c.login(tc.client, "", oauth2.SetAuthURLParam("scope", tc.scope))
			if got := tok.RefreshToken != ""; got != tc.want {
				t.Errorf("refresh token issued = %v, want %v", got, tc.want)
			}
		})
	}
}

func (c *rp) revoke(id, secret, token, hint string) *http.Response {
	c.t.Helper()
	var doc struct {
		Revocation string `json:"revocation_endpoint"`
	}
	if err := c.provider.Claims(&doc); err != nil {
		c.t.Fatal(err)
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, doc.Revocation, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return c.do(req)
}

func TestRevocation(t *testing.T) {
	c := newRP(t, devprovider.Options{AutoLogin: "alice"})

	t.Run("refresh token", func(t *testing.T) {
		tok, _ := c.login(clientID, "")
		if resp := c.revoke(clientID, clientSecret, tok.RefreshToken, "refresh_token"); resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: status %d", resp.StatusCode)
		}
		_, err := c.refresh(clientID, tok.RefreshToken)
		wantOAuthError(t, err, "invalid_grant")
		if st := c.p.Stats(); st.Revocations != 1 || st.LastRevocationHint != "refresh_token" {
			t.Errorf("stats = %+v", st)
		}
	})
	t.Run("access token", func(t *testing.T) {
		tok, _ := c.login(clientID, "")
		if resp := c.revoke(clientID, clientSecret, tok.AccessToken, "access_token"); resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: status %d", resp.StatusCode)
		}
		if _, err := c.provider.UserInfo(c.ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Error("userinfo accepted a revoked access token")
		}
		if _, err := c.refresh(clientID, tok.RefreshToken); err != nil {
			t.Errorf("refresh after revoking only the access token: %v", err)
		}
		if st := c.p.Stats(); st.LastRevocationHint != "access_token" {
			t.Errorf("LastRevocationHint = %q", st.LastRevocationHint)
		}
	})
	t.Run("another client's token", func(t *testing.T) {
		tok, _ := c.login(clientID, "")
		if resp := c.revoke(postClientID, clientSecret, tok.RefreshToken, "refresh_token"); resp.StatusCode == http.StatusOK {
			t.Error("a client revoked another client's token")
		}
		if _, err := c.refresh(clientID, tok.RefreshToken); err != nil {
			t.Errorf("refresh: %v", err)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		tok, _ := c.login(clientID, "")
		if resp := c.revoke(clientID, "wrong", tok.RefreshToken, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		if resp := c.revoke(clientID, clientSecret, "no-such-token", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200 (RFC 7009 §2.2)", resp.StatusCode)
		}
	})
}

func (c *rp) endSession(params url.Values) *http.Response {
	c.t.Helper()
	return c.get(c.endSessionURL() + "?" + params.Encode())
}

func (c *rp) endSessionURL() string {
	var doc struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := c.provider.Claims(&doc); err != nil {
		c.t.Fatal(err)
	}
	return doc.EndSession
}

func TestEndSession(t *testing.T) {
	c := newRP(t, devprovider.Options{})
	tok, _ := c.login(clientID, "alice")
	idToken, _ := tok.Extra("id_token").(string)

	resp := c.endSession(url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {postLogoutURI}, "state": {"st-123"}})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != postLogoutURI+"?state=st-123" {
		t.Fatalf("end_session: %d Location=%q, want redirect to %s?state=st-123", resp.StatusCode, resp.Header.Get("Location"), postLogoutURI)
	}
	if st := c.p.Stats(); st.EndSessions != 1 {
		t.Errorf("EndSessions = %d, want 1", st.EndSessions)
	}
	// The provider session and the tokens issued in it have ended.
	_, err := c.refresh(clientID, tok.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	tx := newTx(clientID)
	if q := c.callback(c.authorize(tx, oauth2.SetAuthURLParam("prompt", "none")), tx); q.Get("error") != "login_required" {
		t.Errorf("prompt=none after logout: %v, want login_required", q)
	}

	t.Run("unregistered post_logout_redirect_uri", func(t *testing.T) {
		resp := c.endSession(url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://127.0.0.1:1/elsewhere"}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d Location=%q, want 400", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("no redirect", func(t *testing.T) {
		resp := c.endSession(url.Values{})
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/logged-out" {
			t.Errorf("status %d at %s, want the signed-out page", resp.StatusCode, resp.Request.URL)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	c := newRP(t, devprovider.Options{})
	cc := func(id, secret string) (*oauth2.Token, error) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
		req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.provider.Endpoint().TokenURL, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp := c.do(req)
		if resp.StatusCode != http.StatusOK {
			var body struct {
				Error string `json:"error"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			return nil, &oauth2.RetrieveError{Response: resp, ErrorCode: body.Error}
		}
		var tok oauth2.Token
		return &tok, json.NewDecoder(resp.Body).Decode(&tok)
	}

	tok, err := cc(serviceID, serviceSecret)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	// The access token is a JWT signed with the provider's key, sub = client id.
	at, err := c.provider.Verifier(&oidc.Config{ClientID: serviceID}).Verify(c.ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	var claims struct {
		Scope string `json:"scope"`
	}
	if err := at.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if at.Subject != serviceID || claims.Scope != "api" {
		t.Errorf("sub = %q scope = %q, want %q and api", at.Subject, claims.Scope, serviceID)
	}
	if st := c.p.Stats(); st.ClientCredentialsGrants != 1 {
		t.Errorf("ClientCredentialsGrants = %d", st.ClientCredentialsGrants)
	}

	_, err = cc(clientID, clientSecret)
	wantOAuthError(t, err, "unauthorized_client")
	_, err = cc(serviceID, "wrong")
	wantOAuthError(t, err, "invalid_client")
}

func TestUnknownLoginRequest(t *testing.T) {
	c := newRP(t, devprovider.Options{})
	if resp := c.get(c.srv.URL + "/login?authRequestID=nope"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

func TestExpiredAuthRequest(t *testing.T) {
	var offset atomic.Int64 // nanoseconds added to the wall clock
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	c := newRP(t, devprovider.Options{Now: clock})
	resp := c.authorize(newTx(clientID))
	offset.Store(int64(11 * time.Minute))
	if bad := c.submitLogin(resp, "alice", "alice"); bad.StatusCode != http.StatusBadRequest {
		t.Errorf("login after the request expired: status %d, want 400", bad.StatusCode)
	}
}

func TestPublicClientRefresh(t *testing.T) {
	c := newRP(t, devprovider.Options{AutoLogin: "alice"})
	tok, _ := c.login(publicClientID, "")
	next, err := c.refresh(publicClientID, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next.RefreshToken == tok.RefreshToken {
		t.Error("refresh did not rotate the refresh token")
	}
}

func TestRefreshTokenExpires(t *testing.T) {
	var offset atomic.Int64 // nanoseconds added to the wall clock
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	c := newRP(t, devprovider.Options{AutoLogin: "alice", Now: clock, RefreshTokenTTL: time.Hour})
	tok, _ := c.login(clientID, "")
	offset.Store(int64(30 * time.Minute))
	next, err := c.refresh(clientID, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh within its lifetime: %v", err)
	}
	offset.Store(int64(91 * time.Minute))
	_, err = c.refresh(clientID, next.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
}

func TestConcurrentRefreshAtMostOneWins(t *testing.T) {
	c := newRP(t, devprovider.Options{AutoLogin: "alice"})
	tok, _ := c.login(clientID, "")
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.refresh(clientID, tok.RefreshToken)
			errs <- err
		}()
	}
	wins := 0
	for range n {
		if err := <-errs; err == nil {
			wins++
		} else {
			wantOAuthError(t, err, "invalid_grant")
		}
	}
	if wins > 1 {
		t.Errorf("%d concurrent refreshes with one token succeeded, want at most 1", wins)
	}
	if st := c.p.Stats(); st.RefreshGrants != wins || st.RefreshGrants+st.RefreshReuseRejected == 0 {
		t.Errorf("stats = %+v with %d wins", st, wins)
	}
}

func TestMaxAge(t *testing.T) {
	var offset atomic.Int64 // nanoseconds added to the wall clock
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	c := newRP(t, devprovider.Options{Now: clock})
	c.login(clientID, "alice")

	maxAge := oauth2.SetAuthURLParam("max_age", "60")
	tx := newTx(clientID)
	if q := c.callback(c.authorize(tx, maxAge), tx); !q.Has("code") {
		t.Fatalf("max_age=60 right after sign-in: %v, want a code", q)
	}
	offset.Store(int64(2 * time.Minute))
	if resp := c.authorize(newTx(clientID), maxAge); resp.StatusCode != http.StatusOK {
		t.Errorf("max_age=60 two minutes after sign-in: status %d, want the login form", resp.StatusCode)
	}
}

func TestIntrospection(t *testing.T) {
	c := newRP(t, devprovider.Options{AutoLogin: "alice"})
	var doc struct {
		Introspection string `json:"introspection_endpoint"`
	}
	if err := c.provider.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	introspect := func(token string) (active bool, sub string) {
		t.Helper()
		req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, doc.Introspection, strings.NewReader(url.Values{"token": {token}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, clientSecret)
		resp := c.do(req)
		var body struct {
			Active bool   `json:"active"`
			Sub    string `json:"sub"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("introspection: status %d: %v", resp.StatusCode, err)
		}
		return body.Active, body.Sub
	}
	tok, _ := c.login(clientID, "")
	if active, sub := introspect(tok.AccessToken); !active || sub != "alice" {
		t.Errorf("live token: active=%v sub=%q, want true alice", active, sub)
	}
	c.revoke(clientID, clientSecret, tok.AccessToken, "")
	if active, _ := introspect(tok.AccessToken); active {
		t.Error("revoked token introspected as active")
	}
}
