package systemtest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider/devprovidertest"
)

// startWithDevProvider runs a gateway against the in-process development
// OpenID provider (real provider code), signing alice in without a form.
func startWithDevProvider(t *testing.T, mutate func(*config.Config)) (*env, *devprovider.Provider) {
	return startWithDevProviderTTL(t, 0, mutate)
}

func startWithDevProviderTTL(t *testing.T, accessTTL time.Duration, mutate func(*config.Config)) (*env, *devprovider.Provider) {
	t.Helper()
	e := newEnv(t)
	op, _ := devprovidertest.NewTestServer(t, devprovider.Options{
		AccessTokenTTL: accessTTL,
		Clients: []devprovider.Client{{
			ID: testClientID, Secret: testClientSecret,
			RedirectURIs:           []string{e.callbackURL()},
			PostLogoutRedirectURIs: []string{e.publicURL + "/"},
		}},
		AutoLogin: "alice",
	})
	e.start(op.Issuer(), mutate)
	return e, op
}

func TestLoginUserAPILogoutWithRealProvider(t *testing.T) {
	e, op := startWithDevProvider(t, nil)
	b := e.browser()

	resp := b.login("/app?tab=1")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app" {
		t.Fatalf("login ended at %s with %d, want the return URL", resp.Request.URL, resp.StatusCode)
	}
	if got := resp.Request.URL.RawQuery; got != "tab=1" {
		t.Errorf("return URL query = %q", got)
	}

	status, claims := b.user()
	if status != http.StatusOK {
		t.Fatalf("/bff/user = %d after login", status)
	}
	if claims["sub"] != "alice" {
		t.Errorf("sub = %v, want alice", claims["sub"])
	}
	logoutURL, _ := claims["bff:logout_url"].(string)
	if !strings.HasPrefix(logoutURL, "/bff/logout?sid=") {
		t.Errorf("bff:logout_url = %q", logoutURL)
	}
	if exp, _ := claims["bff:session_expires_in"].(float64); exp < 29*60 || exp > 30*60 {
		t.Errorf("bff:session_expires_in = %v, want about the 30m idle timeout", claims["bff:session_expires_in"])
	}
	for _, hidden := range []string{"nonce", "at_hash"} {
		if _, ok := claims[hidden]; ok {
			t.Errorf("/bff/user exposes protocol claim %q", hidden)
		}
	}

	resp = b.api("GET", "/api/orders")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API call = %d", resp.StatusCode)
	}
	last, _ := e.api.Last()
	if !strings.HasPrefix(last.Header.Get("Authorization"), "Bearer ") {
		t.Errorf("upstream got Authorization %q, want a bearer token", last.Header.Get("Authorization"))
	}
	if strings.Contains(last.Header.Get("Cookie"), "__Host-gatehouse") {
		t.Error("upstream received the session cookie")
	}

	// Logout with a wrong or missing sid is refused and keeps the session.
	for _, path := range []string{"/bff/logout", "/bff/logout?sid=wrong"} {
		if resp := b.do("GET", path, nil, false); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", path, resp.StatusCode)
		}
		if status, _ := b.user(); status != http.StatusOK {
			t.Fatalf("session lost after refused logout %s", path)
		}
	}

	resp = b.do("GET", logoutURL, nil, false)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logout = %d, want 302", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), op.Issuer()) || loc.Query().Get("client_id") != testClientID || loc.Query().Get("post_logout_redirect_uri") != e.publicURL+"/" {
		t.Errorf("logout redirect = %s, want the provider's end-session endpoint", loc)
	}
	if st := op.Stats(); st.Revocations != 1 || st.LastRevocationHint != "refresh_token" {
		t.Errorf("provider saw %d revocations (hint %q), want the refresh token revoked once", st.Revocations, st.LastRevocationHint)
	}
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("/bff/user after logout = %d, want 401", status)
	}
	if resp := b.api("GET", "/api/orders"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API after logout = %d, want 401", resp.StatusCode)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	e, _ := startWithDevProvider(t, nil)
	b := e.browser()
	b.login("/")
	lines := b.setCookies("__Host-gatehouse")
	if len(lines) != 1 {
		t.Fatalf("Set-Cookie lines for the session = %q, want one", lines)
	}
	re := regexp.MustCompile(`^__Host-gatehouse=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; Secure; SameSite=Lax$`)
	if !re.MatchString(lines[0]) {
		t.Errorf("session cookie = %q, want an opaque 256-bit id with Path=/; HttpOnly; Secure; SameSite=Lax and no Domain or expiry", lines[0])
	}
	// The login transaction cookie is short-lived, __Host- and cleared at the callback.
	tx := b.setCookies("__Host-gatehouse-tx-")
	if len(tx) != 2 || !strings.Contains(tx[0], "Max-Age=600; HttpOnly; Secure; SameSite=Lax") || !strings.Contains(tx[1], "Max-Age=0") {
		t.Errorf("transaction cookies = %q, want set for 10 minutes then cleared", tx)
	}
}

func TestStrictSameSiteByConfig(t *testing.T) {
	e, _ := startWithDevProvider(t, func(c *config.Config) { c.Session.SameSite = "strict" })
	b := e.browser()
	b.login("/")
	lines := b.setCookies("__Host-gatehouse")
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "SameSite=Strict") {
		t.Errorf("session cookie = %q, want SameSite=Strict", lines)
	}
}

func TestSessionFixationGetsNewID(t *testing.T) {
	e, _ := startWithDevProvider(t, nil)
	b := e.browser()
	u, _ := url.Parse(e.publicURL)
	planted := strings.Repeat("A", 43)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-gatehouse", Value: planted, Path: "/", Secure: true}})
	b.login("/")
	c := b.cookie("__Host-gatehouse")
	if c == nil || c.Value == planted {
		t.Fatalf("session cookie after login = %v, want a new id", c)
	}
	attacker := e.browser()
	attacker.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-gatehouse", Value: planted, Path: "/", Secure: true}})
	if status, _ := attacker.user(); status != http.StatusUnauthorized {
		t.Errorf("planted id = %d, want 401", status)
	}
	// A second login ends the first session.
	first := c.Value
	b.login("/")
	if c := b.cookie("__Host-gatehouse"); c == nil || c.Value == first {
		t.Fatal("relogin kept the session id")
	}
	old := e.browser()
	old.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-gatehouse", Value: first, Path: "/", Secure: true}})
	if status, _ := old.user(); status != http.StatusUnauthorized {
		t.Errorf("session replaced by relogin still answers %d", status)
	}
}

func TestUserEndpointNeedsAntiForgeryHeader(t *testing.T) {
	e, _ := startWithDevProvider(t, nil)
	b := e.browser()
	b.login("/")
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"missing", nil, http.StatusForbidden},
		{"wrong value", map[string]string{"X-CSRF": "0"}, http.StatusForbidden},
		{"cross-site", map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign origin", map[string]string{"X-CSRF": "1", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"present", map[string]string{"X-CSRF": "1"}, http.StatusOK},
		{"same origin", map[string]string{"X-CSRF": "1", "Origin": e.publicURL, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
	} {
		resp := b.do("GET", "/bff/user", tc.header, false)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: /bff/user = %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want JSON", tc.name, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", tc.name, cc)
		}
	}
	anon := e.browser()
	if status, _ := anon.user(); status != http.StatusUnauthorized {
		t.Errorf("anonymous /bff/user = %d, want 401", status)
	}
}

func TestIdleAndAbsoluteTimeouts(t *testing.T) {
	// The hostile provider in its valid mode shares the test clock, so the
	// tokens it issues age with the sessions.
	e, op := startWithHostileProvider(t, func(c *config.Config) {
		c.Session.IdleTimeout = 10 * time.Minute
		c.Session.AbsoluteTimeout = time.Hour
	})
	op.SetClock(e.clock.Now)
	b := e.browser()
	b.login("/")

	// Use within the idle window slides it.
	for range 5 {
		e.clock.Advance(9 * time.Minute)
		if status, _ := b.user(); status != http.StatusOK {
			t.Fatalf("session ended at %d while in use", status)
		}
	}
	// ?slide=false reads without extending.
	e.clock.Advance(6 * time.Minute)
	if resp := b.do("GET", "/bff/user?slide=false", map[string]string{"X-CSRF": "1"}, false); resp.StatusCode != http.StatusOK {
		t.Fatalf("slide=false read = %d", resp.StatusCode)
	}
	e.clock.Advance(5 * time.Minute)
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("after 11 idle minutes (one read with slide=false) /bff/user = %d, want 401", status)
	}

	// Absolute: used every 9 minutes, the session still ends at one hour.
	b2 := e.browser()
	b2.login("/")
	ended := false
	for i := range 8 {
		e.clock.Advance(9 * time.Minute)
		status, _ := b2.user()
		if status == http.StatusUnauthorized {
			ended = true
			if i < 6 {
				t.Errorf("session ended after %d minutes, before the absolute timeout", (i+1)*9)
			}
			break
		}
	}
	if !ended {
		t.Error("session outlived the absolute timeout")
	}
}

func TestLoginRejectsOpenRedirects(t *testing.T) {
	e, op := startWithDevProvider(t, nil)
	b := e.browser()
	for _, ru := range []string{"//evil.example", "/\\evil.example", "https://evil.example", "javascript:alert(1)", "/\t/evil.example", "evil", "/%2F%2Fevil.example"} {
		resp := b.do("GET", "/bff/login?returnUrl="+url.QueryEscape(ru), nil, false)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("returnUrl %q: %d, want 400", ru, resp.StatusCode)
		}
	}
	if n := op.Stats().AuthorizeRequests; n != 0 {
		t.Errorf("provider saw %d authorization requests for bad return URLs", n)
	}
	// The logout endpoint refuses them too.
	if resp := b.do("GET", "/bff/logout?returnUrl="+url.QueryEscape("//evil.example"), nil, false); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("logout with //evil.example = %d, want 400", resp.StatusCode)
	}
}

func TestLoginRedirectCarriesPKCEStateNonce(t *testing.T) {
	e, _ := startWithDevProvider(t, nil)
	b := e.browser()
	resp := b.do("GET", "/bff/login", nil, false)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login = %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		t.Errorf("PKCE parameters = %q/%q, want S256", q.Get("code_challenge_method"), q.Get("code_challenge"))
	}
	if len(q.Get("state")) < 43 || len(q.Get("nonce")) < 43 || q.Get("response_type") != "code" {
		t.Errorf("authorization request = %v", q)
	}
	if q.Get("redirect_uri") != e.callbackURL() {
		t.Errorf("redirect_uri = %q, want %q", q.Get("redirect_uri"), e.callbackURL())
	}
	if q.Get("code_verifier") != "" || strings.Contains(loc.String(), "secret") {
		t.Error("authorization URL carries a secret")
	}
}

func TestNoTokenReachesTheBrowserOrTheLogs(t *testing.T) {
	// Access tokens live 30s, under the 60s refresh skew, so every API call
	// refreshes: rotated tokens are covered too.
	e, op := startWithDevProviderTTL(t, 30*time.Second, nil)
	b := e.browser()
	b.login("/")
	b.user()
	b.api("GET", "/api/x")
	b.api("GET", "/api/y")
	_, claims := b.user()
	lu, _ := claims["bff:logout_url"].(string)
	b.do("GET", lu, nil, false)
	if op.Stats().RefreshGrants == 0 {
		t.Fatal("no refresh happened; the test would not cover refreshed tokens")
	}

	secrets := append(e.spy.Values(), testClientSecret)
	if len(secrets) < 6 {
		t.Fatalf("spy saw only %d tokens", len(secrets))
	}
	seen := b.everything()
	logs := e.logs.String()
	for _, s := range secrets {
		if len(s) < 8 {
			continue
		}
		if i := strings.Index(seen, s); i >= 0 {
			t.Errorf("a token or secret reached the browser: %.12s… in %q", s, seen[max(0, i-300):i])
		}
		if strings.Contains(logs, s) {
			t.Errorf("a token or secret reached the logs: %.12s…", s)
		}
	}
	if c := b.cookie("__Host-gatehouse"); c != nil && strings.Contains(logs, c.Value) {
		t.Error("the session cookie value reached the logs")
	}
}

// captureTransport sends through the gateway's test TLS client, looked up
// at request time, and keeps every request body: the logout tokens a
// provider delivers.
type captureTransport struct {
	e      *env
	mu     sync.Mutex
	bodies []string
}

func (c *captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		c.mu.Lock()
		c.bodies = append(c.bodies, string(body))
		c.mu.Unlock()
	}
	return c.e.srv.Client().Transport.RoundTrip(req)
}

func TestRealProviderBackchannelLogoutAndCleanLogs(t *testing.T) {
	e := newEnv(t)
	capture := &captureTransport{e: e}
	op, _ := devprovidertest.NewTestServer(t, devprovider.Options{
		Clients: []devprovider.Client{{
			ID: testClientID, Secret: testClientSecret,
			RedirectURIs:         []string{e.callbackURL()},
			BackchannelLogoutURI: e.publicURL + "/bff/backchannel",
		}},
		AutoLogin:      "alice",
		AccessTokenTTL: 30 * time.Second, // under the refresh skew: every call refreshes
		HTTPClient:     &http.Client{Transport: capture, Timeout: 10 * time.Second},
	})
	e.start(op.Issuer(), nil)
	laptop, phone := e.browser(), e.browser()
	laptop.login("/")
	phone.login("/")
	laptop.api("GET", "/api/x")
	phone.api("GET", "/api/y")

	sids := op.EndSessionsOf(context.Background(), "alice")
	if len(sids) == 0 || op.Stats().BackchannelLogouts == 0 || op.Stats().BackchannelLogoutFailures != 0 {
		t.Fatalf("provider ended %v and delivered %d logout tokens (%d failed)", sids, op.Stats().BackchannelLogouts, op.Stats().BackchannelLogoutFailures)
	}
	for name, b := range map[string]*browser{"laptop": laptop, "phone": phone} {
		if status, _ := b.user(); status != http.StatusUnauthorized {
			t.Errorf("%s session alive after the provider's back-channel logout: %d", name, status)
		}
	}

	secrets := append(e.spy.Values(), testClientSecret)
	for _, body := range capture.bodies {
		if form, err := url.ParseQuery(body); err == nil && form.Get("logout_token") != "" {
			secrets = append(secrets, form.Get("logout_token"))
		}
	}
	if len(secrets) < len(e.spy.Values())+2 {
		t.Fatal("no logout token was captured; the log check would not cover them")
	}
	for _, b := range []*browser{laptop, phone} {
		if c := b.cookie("__Host-gatehouse"); c != nil {
			secrets = append(secrets, c.Value)
		}
	}
	logs := e.logs.String()
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(logs, s) {
			t.Errorf("a token, secret or cookie value reached the logs: %.12s…", s)
		}
	}
}

// TestNewWithoutDefaultsFailsClosed: a configuration built in code without
// SetDefaults is refused with an error, never a panic.
func TestNewWithoutDefaultsFailsClosed(t *testing.T) {
	cfg := &config.Config{
		Server: config.Server{PublicURL: "https://app.example"},
		OIDC:   config.OIDC{Issuer: "https://id.example", ClientID: "c", ClientSecret: "s"},
		Routes: []config.Route{{Prefix: "/api/", Upstream: "http://127.0.0.1:1"}},
	}
	if gw, err := gatehouse.New(cfg); err == nil {
		gw.Close()
		t.Fatal("New accepted a configuration without defaults")
	}
}
