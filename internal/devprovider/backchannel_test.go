package devprovider_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
)

// logoutReceiver is a relying party's back-channel logout endpoint.
type logoutReceiver struct {
	mu     sync.Mutex
	tokens []string
	status int
}

func (l *logoutReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" && r.FormValue("logout_token") != "" {
		l.tokens = append(l.tokens, r.FormValue("logout_token"))
	}
	w.WriteHeader(l.status)
}

func (l *logoutReceiver) received() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tokens)
}

func newBackchannelRP(t *testing.T, status int) (*rp, *logoutReceiver) {
	recv := &logoutReceiver{status: status}
	rs := httptest.NewServer(recv)
	t.Cleanup(rs.Close)
	clients := testClients()
	clients[0].BackchannelLogoutURI = rs.URL + "/bff/backchannel"
	return newRP(t, devprovider.Options{Clients: clients}), recv
}

type logoutClaims struct {
	Sub    string         `json:"sub"`
	Sid    string         `json:"sid"`
	Jti    string         `json:"jti"`
	Nonce  *string        `json:"nonce"`
	Events map[string]any `json:"events"`
}

// verifyLogoutToken checks a logout token as Back-Channel Logout 1.0 §2.6
// asks a relying party to.
func (c *rp) verifyLogoutToken(raw string) logoutClaims {
	c.t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		c.t.Fatal(err)
	}
	if typ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		c.t.Errorf("typ = %v, want logout+jwt", typ)
	}
	tok, err := c.verifier(clientID).Verify(c.ctx, raw)
	if err != nil {
		c.t.Fatalf("verify logout token: %v", err)
	}
	var claims logoutClaims
	if err := tok.Claims(&claims); err != nil {
		c.t.Fatal(err)
	}
	if _, ok := claims.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok || claims.Jti == "" || claims.Nonce != nil {
		c.t.Errorf("logout token claims = %+v, want the event, a jti and no nonce", claims)
	}
	return claims
}

func TestBackchannelLogoutOnEndSession(t *testing.T) {
	c, recv := newBackchannelRP(t, http.StatusOK)
	tok, idc := c.login(clientID, "alice")
	c.login(postClientID, "alice") // same provider session, no back-channel URI
	idToken, _ := tok.Extra("id_token").(string)

	c.endSession(url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {postLogoutURI}})
	got := recv.received()
	if len(got) != 1 {
		t.Fatalf("received %d logout tokens, want 1", len(got))
	}
	lc := c.verifyLogoutToken(got[0])
	if lc.Sub != "alice" || lc.Sid != idc.Sid {
		t.Errorf("logout token sub/sid = %q/%q, want alice/%q", lc.Sub, lc.Sid, idc.Sid)
	}
	if st := c.p.Stats(); st.BackchannelLogouts != 1 || st.BackchannelLogoutFailures != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestBackchannelLogoutRefused(t *testing.T) {
	c, _ := newBackchannelRP(t, http.StatusBadRequest)
	c.login(clientID, "alice")
	if sids := c.p.EndSessionsOf(t.Context(), "alice"); len(sids) != 1 {
		t.Fatalf("EndSessionsOf = %v, want one sid", sids)
	}
	if st := c.p.Stats(); st.BackchannelLogouts != 0 || st.BackchannelLogoutFailures != 1 {
		t.Errorf("stats = %+v, want one failure", st)
	}
}

func TestEndSessionsOf(t *testing.T) {
	c, recv := newBackchannelRP(t, http.StatusOK)
	tok1, first := c.login(clientID, "alice")
	c.browser.Jar, _ = cookiejar.New(nil) // a second browser
	tok2, second := c.login(clientID, "alice")
	c.login(clientID, "bob", oauth2.SetAuthURLParam("prompt", "login"))

	sids := c.p.EndSessionsOf(t.Context(), "alice")
	want := []string{first.Sid, second.Sid}
	slices.Sort(want)
	if !slices.Equal(sids, want) {
		t.Fatalf("EndSessionsOf = %v, want %v", sids, want)
	}
	for _, tok := range []*oauth2.Token{tok1, tok2} {
		_, err := c.refresh(clientID, tok.RefreshToken)
		wantOAuthError(t, err, "invalid_grant")
	}
	var gotSids []string
	for _, raw := range recv.received() {
		gotSids = append(gotSids, c.verifyLogoutToken(raw).Sid)
	}
	slices.Sort(gotSids)
	if !slices.Equal(gotSids, want) {
		t.Errorf("logout tokens for sids %v, want %v", gotSids, want)
	}
}

func TestDiscoveryAdvertisesBackchannelLogout(t *testing.T) {
	c := newRP(t, devprovider.Options{})
	var doc struct {
		Supported        bool `json:"backchannel_logout_supported"`
		SessionSupported bool `json:"backchannel_logout_session_supported"`
	}
	if err := c.provider.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	if !doc.Supported || !doc.SessionSupported {
		t.Errorf("backchannel_logout_supported/session_supported = %v/%v, want true/true", doc.Supported, doc.SessionSupported)
	}
}
