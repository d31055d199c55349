package interoptest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/gatehouse-bff/gatehouse/internal/interoptest"
)

const (
	redirectURI   = "http://127.0.0.1:1/bff/callback"
	postLogoutURI = "http://127.0.0.1:1/signed-out"
	backchannelEv = "http://schemas.openid.net/event/backchannel-logout"
)

// rp is a relying party driving the provider with a plain HTTP client.
type rp struct {
	t        *testing.T
	ctx      context.Context
	provider *interoptest.Provider
	op       *oidc.Provider
	conf     oauth2.Config
	browser  *http.Client
}

func newRP(t *testing.T, p *interoptest.Provider) *rp {
	t.Helper()
	ctx := oidc.ClientContext(t.Context(), &http.Client{Timeout: 30 * time.Second})
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectURI) || strings.HasPrefix(req.URL.String(), postLogoutURI) {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
	endpoint := op.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	o := p.Options()
	return &rp{
		t: t, ctx: ctx, provider: p, op: op, browser: browser,
		conf: oauth2.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  redirectURI,
			Scopes:       []string{oidc.ScopeOpenID, "profile", "email"},
		},
	}
}

// navigate follows a browser navigation to url and returns where it stopped:
// the redirect to the client, or the final response.
func (r *rp) navigate(u string) *http.Response {
	r.t.Helper()
	resp, err := r.browser.Get(u)
	if err != nil {
		r.t.Fatalf("navigate: %v", err)
	}
	r.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// callback runs an authorization request and returns the parameters the
// provider sent to the redirect URI.
func (r *rp) callback(opts ...oauth2.AuthCodeOption) url.Values {
	r.t.Helper()
	resp := r.navigate(r.conf.AuthCodeURL("state-1", opts...))
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		r.t.Fatalf("authorization ended with status %d, not a redirect to the client: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		r.t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		r.t.Fatalf("redirected to %q, want %q", got, redirectURI)
	}
	return loc.Query()
}

type login struct {
	token   *oauth2.Token
	idToken *oidc.IDToken
	claims  struct {
		Sub   string `json:"sub"`
		Name  string `json:"name"`
		Email string `json:"email"`
		SID   string `json:"sid"`
	}
}

// login completes an authorization code flow with PKCE and verifies the ID
// token.
func (r *rp) login(extra ...oauth2.AuthCodeOption) login {
	r.t.Helper()
	verifier := oauth2.GenerateVerifier()
	nonce := oauth2.GenerateVerifier()
	q := r.callback(append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}, extra...)...)
	if e := q.Get("error"); e != "" {
		r.t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != "state-1" {
		r.t.Fatalf("state = %q", q.Get("state"))
	}
	// RFC 9207: the provider identifies itself in the authorization response.
	if q.Get("iss") != r.provider.Issuer() {
		r.t.Fatalf("iss = %q, want %q", q.Get("iss"), r.provider.Issuer())
	}
	tok, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		r.t.Fatalf("code exchange: %v", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		r.t.Fatal("token response has no id_token")
	}
	idt, err := r.op.Verifier(&oidc.Config{ClientID: r.conf.ClientID}).Verify(r.ctx, raw)
	if err != nil {
		r.t.Fatalf("verify id token: %v", err)
	}
	if idt.Nonce != nonce {
		r.t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	l := login{token: tok, idToken: idt}
	if err := idt.Claims(&l.claims); err != nil {
		r.t.Fatal(err)
	}
	return l
}

func (r *rp) refresh(refreshToken string) (*oauth2.Token, error) {
	return r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
}

// revoke sends an RFC 7009 revocation request.
func (r *rp) revoke(token, hint string) {
	r.t.Helper()
	var meta struct {
		RevocationEndpoint string `json:"revocation_endpoint"`
	}
	if err := r.op.Claims(&meta); err != nil || meta.RevocationEndpoint == "" {
		r.t.Fatalf("no revocation_endpoint in discovery (%v)", err)
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	req, err := http.NewRequestWithContext(r.ctx, http.MethodPost, meta.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(r.conf.ClientID), url.QueryEscape(r.conf.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("revocation status %d", resp.StatusCode)
	}
}

func wantInvalidGrant(t *testing.T, what string, err error) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("%s: got %v, want invalid_grant", what, err)
	}
}

func stats(t *testing.T, p *interoptest.Provider) interoptest.Stats {
	t.Helper()
	s, err := p.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCodeFlowRefreshRotationAndRevocation(t *testing.T) {
	p := interoptest.Start(t, interoptest.Options{
		RedirectURI:    redirectURI,
		AutoLoginSub:   "alice",
		AccessTokenTTL: 90 * time.Second,
	})
	r := newRP(t, p)

	first := r.login()
	if first.claims.Sub != "alice" || first.claims.Name != "Interop User alice" || first.claims.Email != "alice@interop.test" {
		t.Errorf("id token claims = %+v", first.claims)
	}
	// The provider puts sid into ID tokens only for clients registered for
	// back-channel logout, like several real providers.
	if first.claims.SID != "" {
		t.Errorf("id token has sid %q for a client without back-channel logout", first.claims.SID)
	}
	if first.token.RefreshToken == "" {
		t.Fatal("no refresh token issued")
	}
	if first.token.ExpiresIn != 90 {
		t.Errorf("expires_in = %d, want 90", first.token.ExpiresIn)
	}
	info, err := r.op.UserInfo(r.ctx, oauth2.StaticTokenSource(first.token))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != "alice" {
		t.Errorf("userinfo sub = %q", info.Subject)
	}

	// Rotation: the refresh returns a new refresh token.
	rotated, err := r.refresh(first.token.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if rotated.RefreshToken == "" || rotated.RefreshToken == first.token.RefreshToken {
		t.Fatalf("refresh token not rotated")
	}
	if rotated.AccessToken == first.token.AccessToken {
		t.Error("refresh returned the old access token")
	}
	// Replaying the old one fails and (RFC 9700 §4.14.2) revokes the family.
	_, err = r.refresh(first.token.RefreshToken)
	wantInvalidGrant(t, "replayed refresh token", err)
	_, err = r.refresh(rotated.RefreshToken)
	wantInvalidGrant(t, "refresh token of a revoked family", err)

	// A second login reuses the provider session and the granted consent.
	second := r.login()
	r.revoke(second.token.RefreshToken, "refresh_token")
	_, err = r.refresh(second.token.RefreshToken)
	wantInvalidGrant(t, "revoked refresh token", err)

	s := stats(t, p)
	if s.Grants["authorization_code"] != 2 || s.Refreshes != 1 || s.RefreshErrors != 3 || s.Revocations != 1 {
		t.Errorf("stats = %+v", s)
	}
	if s.RevokedGrants["token"] != 1 || s.RevokedGrants["revocation"] != 1 {
		t.Errorf("revoked grants = %v", s.RevokedGrants)
	}
}

func TestAuthorizationRequests(t *testing.T) {
	p := interoptest.Start(t, interoptest.Options{RedirectURI: redirectURI, AutoLoginSub: "alice"})

	tests := []struct {
		name      string
		opts      []oauth2.AuthCodeOption
		wantError string // for a failed request
		wantSub   string // for a completed login; opts then omit PKCE and nonce
	}{
		{
			name:      "pkce is required",
			opts:      nil,
			wantError: "invalid_request",
		},
		{
			name:      "plain pkce is refused",
			opts:      []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("code_challenge_method", "plain")},
			wantError: "invalid_request",
		},
		{
			name:      "prompt none without a session",
			opts:      []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none")},
			wantError: "login_required",
		},
		{
			name:    "auto login subject",
			wantSub: "alice",
		},
		{
			name:    "login_hint picks the subject",
			opts:    []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("login_hint", "bob")},
			wantSub: "bob",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRP(t, p)
			if tt.wantSub == "" {
				q := r.callback(tt.opts...)
				if got := q.Get("error"); got != tt.wantError {
					t.Fatalf("error = %q (%s), want %q", got, q.Get("error_description"), tt.wantError)
				}
				return
			}
			if l := r.login(tt.opts...); l.claims.Sub != tt.wantSub {
				t.Errorf("sub = %q, want %q", l.claims.Sub, tt.wantSub)
			}
		})
	}
}

func TestRefreshTokensOnlyWithOfflineAccess(t *testing.T) {
	p := interoptest.Start(t, interoptest.Options{
		RedirectURI: redirectURI, AutoLoginSub: "alice", RefreshTokensOnlyWithOfflineAccess: true,
	})
	r := newRP(t, p)
	if l := r.login(); l.token.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
	r.conf.Scopes = append(r.conf.Scopes, oidc.ScopeOfflineAccess)
	if l := r.login(oauth2.SetAuthURLParam("prompt", "consent")); l.token.RefreshToken == "" {
		t.Error("no refresh token with offline_access and prompt=consent")
	}
}

// logoutReceiver stands in for the client's backchannel_logout_uri.
func logoutReceiver(t *testing.T) (*httptest.Server, <-chan string) {
	tokens := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		tokens <- req.PostFormValue("logout_token")
		w.Header().Set("Cache-Control", "no-store")
	}))
	t.Cleanup(srv.Close)
	return srv, tokens
}

type logoutClaims struct {
	jwt.Claims
	SID    string                     `json:"sid"`
	Nonce  *string                    `json:"nonce"`
	Events map[string]json.RawMessage `json:"events"`
}

// checkLogoutToken verifies the logout token's signature with the provider's
// keys and returns its claims.
func checkLogoutToken(t *testing.T, r *rp, raw string) logoutClaims {
	t.Helper()
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := r.op.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if _, err := oidc.NewRemoteKeySet(r.ctx, meta.JWKS).VerifySignature(r.ctx, raw); err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse logout token: %v", err)
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Errorf("typ = %v, want logout+jwt", typ)
	}
	var c logoutClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Events[backchannelEv]; !ok {
		t.Errorf("events = %v, want member %s", c.Events, backchannelEv)
	}
	if c.Nonce != nil {
		t.Error("logout token carries a nonce")
	}
	if c.ID == "" || c.IssuedAt == nil {
		t.Errorf("logout token lacks jti or iat: %+v", c.Claims)
	}
	if err := c.Claims.Validate(jwt.Expected{Issuer: r.provider.Issuer(), AnyAudience: jwt.Audience{r.conf.ClientID}}); err != nil {
		t.Errorf("logout token claims: %v", err)
	}
	return c
}

func TestTriggerBackchannelLogout(t *testing.T) {
	srv, tokens := logoutReceiver(t)
	p := interoptest.Start(t, interoptest.Options{
		RedirectURI: redirectURI, AutoLoginSub: "alice", BackchannelLogoutURI: srv.URL + "/bff/backchannel",
	})
	r := newRP(t, p)
	l := r.login()
	if l.claims.SID == "" {
		t.Fatal("id token has no sid although the client requires one in logout tokens")
	}

	if err := p.TriggerBackchannelLogout(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	var raw string
	select {
	case raw = <-tokens:
	default:
		t.Fatal("no logout token delivered")
	}
	c := checkLogoutToken(t, r, raw)
	if c.Subject != "alice" || c.SID != l.claims.SID {
		t.Errorf("logout token sub=%q sid=%q, want alice %q", c.Subject, c.SID, l.claims.SID)
	}
	_, err := r.refresh(l.token.RefreshToken)
	wantInvalidGrant(t, "refresh after provider logout", err)
	if s := stats(t, p); s.Backchannel.Success != 1 || s.Backchannel.Error != 0 {
		t.Errorf("backchannel stats = %+v", s.Backchannel)
	}
	if err := p.TriggerBackchannelLogout(t.Context(), "alice"); err == nil {
		t.Error("second logout of the same subject reported success")
	}
}

func TestTriggerBackchannelLogoutReportsFailedDelivery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	p := interoptest.Start(t, interoptest.Options{
		RedirectURI: redirectURI, AutoLoginSub: "carol", BackchannelLogoutURI: srv.URL,
	})
	newRP(t, p).login()
	if err := p.TriggerBackchannelLogout(t.Context(), "carol"); err == nil {
		t.Fatal("failed delivery reported as success")
	}
	if s := stats(t, p); s.Backchannel.Error != 1 || len(s.Backchannel.Errors) != 1 {
		t.Errorf("backchannel stats = %+v", s.Backchannel)
	}
}

var (
	formAction = regexp.MustCompile(`<form id="op.logoutForm" method="post" action="([^"]+)"`)
	xsrfInput  = regexp.MustCompile(`name="xsrf" value="([^"]+)"`)
)

// RP-Initiated Logout also sends back-channel logout once the confirmation
// form (which a browser submits by script) is posted.
func TestRPInitiatedLogoutSendsBackchannelLogout(t *testing.T) {
	srv, tokens := logoutReceiver(t)
	p := interoptest.Start(t, interoptest.Options{
		RedirectURI: redirectURI, PostLogoutRedirectURI: postLogoutURI,
		AutoLoginSub: "dave", BackchannelLogoutURI: srv.URL,
	})
	r := newRP(t, p)
	l := r.login()
	if l.claims.SID == "" {
		t.Fatal("id token has no sid")
	}

	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := r.op.Claims(&meta); err != nil || meta.EndSession == "" {
		t.Fatalf("no end_session_endpoint (%v)", err)
	}
	q := url.Values{
		"id_token_hint":            {l.token.Extra("id_token").(string)},
		"post_logout_redirect_uri": {postLogoutURI},
		"state":                    {"bye"},
	}
	page := r.navigate(meta.EndSession + "?" + q.Encode())
	body, err := io.ReadAll(page.Body)
	if err != nil {
		t.Fatal(err)
	}
	action, xsrf := formAction.FindSubmatch(body), xsrfInput.FindSubmatch(body)
	if action == nil || xsrf == nil {
		t.Fatalf("no logout form in %s", body)
	}
	resp, err := r.browser.PostForm(string(action[1]), url.Values{"xsrf": {string(xsrf[1])}, "logout": {"yes"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), postLogoutURI) || loc.Query().Get("state") != "bye" {
		t.Fatalf("logout ended at %q, status %d", resp.Header.Get("Location"), resp.StatusCode)
	}
	select {
	case raw := <-tokens:
		if c := checkLogoutToken(t, r, raw); c.SID != l.claims.SID {
			t.Errorf("sid = %q, want %q", c.SID, l.claims.SID)
		}
	default:
		t.Fatal("no logout token delivered")
	}
	if s := stats(t, p); s.EndSessions != 1 {
		t.Errorf("end sessions = %d", s.EndSessions)
	}
}
