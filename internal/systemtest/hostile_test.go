package systemtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	jose "github.com/go-jose/go-jose/v4"
)

// startWithHostileProvider runs a gateway against the hostile provider,
// which answers every authorization request at once.
func startWithHostileProvider(t *testing.T, mutate func(*config.Config)) (*env, *hostileop.Provider) {
	t.Helper()
	e := newEnv(t)
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()),
		hostileop.WithPostLogoutRedirectURIs(testClientID, e.publicURL+"/"))
	e.start(op.URL, mutate)
	return e, op
}

// assertNoSession checks that a login attempt ended without a session.
func assertNoSession(t *testing.T, b *browser, resp *http.Response, what string) {
	t.Helper()
	if resp.StatusCode < 400 {
		t.Errorf("%s: login ended with %d at %s, want an error page", what, resp.StatusCode, resp.Request.URL)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: error response is %q, want a plain page for a navigation", what, ct)
	}
	if c := b.cookie("__Host-gatehouse"); c != nil {
		t.Errorf("%s: a session cookie was set", what)
	}
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("%s: /bff/user = %d, want 401", what, status)
	}
}

func TestHostileIDTokensNeverMakeASession(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	for _, d := range hostileop.Defects() {
		if d == hostileop.UnknownKid || d == hostileop.DifferentSub {
			continue // covered below: acceptable after rotation / only wrong on refresh
		}
		t.Run(d.String(), func(t *testing.T) {
			op.SetDefect(d)
			b := e.browser()
			resp := b.login("/")
			assertNoSession(t, b, resp, d.String())
			if strings.Contains(b.everything(), "oidc:") || strings.Contains(b.everything(), "provider:") {
				t.Error("internal error text reached the browser")
			}
		})
	}
	op.SetDefect(hostileop.Valid)
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("valid token after the hostile ones: %d", resp.StatusCode)
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Fatalf("valid login gives no session: %d", status)
	}
}

func TestUnknownKidAcceptedAfterJWKSRefetch(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	warm := e.browser()
	if resp := warm.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first login: %d", resp.StatusCode)
	}
	fetches := op.Stats().JWKSFetches
	op.RotateKeys()
	op.SetDefect(hostileop.Valid)
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login with a rotated key: %d", resp.StatusCode)
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Fatalf("no session after key rotation: %d", status)
	}
	if op.Stats().JWKSFetches <= fetches {
		t.Error("the new kid was accepted without refetching the JWKS")
	}
}

func TestIssParameterChecks(t *testing.T) {
	for _, tc := range []struct {
		mode hostileop.IssParam
		ok   bool
	}{
		{hostileop.IssParamCorrect, true},
		{hostileop.IssParamUnsupported, true},
		{hostileop.IssParamUnadvertised, true},
		{hostileop.IssParamWrong, false},
		{hostileop.IssParamMissing, false},
	} {
		e, op := startWithHostileProvider(t, nil)
		op.SetIssParam(tc.mode)
		b := e.browser()
		resp := b.login("/")
		if tc.ok {
			if resp.StatusCode != http.StatusOK {
				t.Errorf("iss mode %d: login = %d, want success", tc.mode, resp.StatusCode)
			}
			continue
		}
		assertNoSession(t, b, resp, "iss mode")
		if n := op.Stats().CodeGrants; n != 0 {
			t.Errorf("iss mode %d: code was exchanged despite the mix-up signal", tc.mode)
		}
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	op.SetDiscoveryIssuer(hostileop.OtherIssuer)
	b := e.browser()
	resp := b.do("GET", "/bff/login", nil, false)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("login with a mismatched discovery issuer = %d, want 503", resp.StatusCode)
	}
	if op.Stats().Authorize != 0 {
		t.Error("the browser was sent to a provider whose discovery document names another issuer")
	}
}

func TestStateTamperingAndReplay(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	b := e.browser()
	resp := b.do("GET", "/bff/login", nil, false)
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	// Let the provider answer, but stop before the callback.
	pc := op.HTTPClient()
	pc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	presp, err := pc.Get(authURL.String())
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	cb, _ := url.Parse(presp.Header.Get("Location"))
	q := cb.Query()

	tampered := *cb
	tq := cb.Query()
	tq.Set("state", q.Get("state")+"x")
	tampered.RawQuery = tq.Encode()
	if r := b.do("GET", tampered.RequestURI(), nil, false); r.StatusCode != http.StatusBadRequest {
		t.Errorf("tampered state = %d, want 400", r.StatusCode)
	}
	other := e.browser() // another browser cannot finish this login
	if r := other.do("GET", cb.RequestURI(), nil, false); r.StatusCode != http.StatusBadRequest {
		t.Errorf("state from another browser = %d, want 400", r.StatusCode)
	}
	// Keep the transaction cookie to replay it later, as an attacker who
	// captured the whole callback request would.
	u, _ := url.Parse(e.publicURL)
	saved := b.c.Jar.Cookies(u)
	if r := b.do("GET", cb.RequestURI(), nil, false); r.StatusCode != http.StatusFound {
		t.Fatalf("genuine callback = %d, want 302", r.StatusCode)
	}
	replay := e.browser()
	for _, c := range saved {
		c.Secure = true
		c.Path = "/"
	}
	replay.c.Jar.SetCookies(u, saved)
	if r := replay.do("GET", cb.RequestURI(), nil, false); r.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback = %d, want 400", r.StatusCode)
	}
	if n := op.Stats().CodeReplays; n != 0 {
		t.Errorf("a replayed state reached the token endpoint (%d code replays)", n)
	}
}

func TestProviderErrorShowsPlainPage(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	op.SetAuthorizeError("access_denied")
	b := e.browser()
	resp := b.login("/")
	assertNoSession(t, b, resp, "access_denied")
	if resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("callback Referrer-Policy = %q", resp.Header.Get("Referrer-Policy"))
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("error page without a request id")
	}
}

func TestPromptPassThrough(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	op.SetPromptValues([]string{"none", "login", "create"})
	b := e.browser()
	if r := b.do("GET", "/bff/login?prompt=login", nil, false); r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "prompt=login") {
		t.Errorf("prompt=login: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	// OpenID Connect Core §3.1.2.1 values pass even when not listed.
	if r := b.do("GET", "/bff/login?prompt=select_account", nil, false); r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "prompt=select_account") {
		t.Errorf("prompt=select_account: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := b.do("GET", "/bff/login?prompt=create", nil, false); r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "prompt=create") {
		t.Errorf("listed prompt=create: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := b.do("GET", "/bff/login?prompt=bogus", nil, false); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown prompt = %d, want 400", r.StatusCode)
	}
}

// TestCorePromptsWithoutPromptValuesSupported: a provider that publishes no
// prompt_values_supported (most do not) still gets the four OpenID Connect
// Core values, and a silent login works there; other values stay 400.
func TestCorePromptsWithoutPromptValuesSupported(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	op.SetPromptValues(nil)
	b := e.browser()
	for _, v := range []string{"none", "login", "consent", "select_account"} {
		r := b.do("GET", "/bff/login?prompt="+v, nil, false)
		if r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "prompt="+v) {
			t.Errorf("prompt=%s without prompt_values_supported: %d %s", v, r.StatusCode, r.Header.Get("Location"))
		}
	}
	if r := b.do("GET", "/bff/login?prompt=create", nil, false); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unlisted prompt=create = %d, want 400", r.StatusCode)
	}
	resp := b.do("GET", "/bff/login?prompt=none&returnUrl=%2Fapp", nil, true)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app" {
		t.Fatalf("silent login ended with %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Errorf("/bff/user after prompt=none login = %d, want 200", status)
	}
}

func TestSilentLoginRequiredReturnsToApp(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	op.SetAuthorizeError("login_required")
	b := e.browser()
	resp := b.do("GET", "/bff/login?prompt=none&returnUrl=%2Fapp", nil, true)
	if resp.Request.URL.Path != "/app" || resp.Request.URL.Query().Get("error") != "login_required" {
		t.Errorf("silent login ended at %s, want /app?error=login_required", resp.Request.URL)
	}
}

func TestUserInfoSubMustMatch(t *testing.T) {
	e, op := startWithHostileProvider(t, func(c *config.Config) { c.OIDC.UserInfo = true })
	op.SetUserinfoSub("someone-else")
	b := e.browser()
	assertNoSession(t, b, b.login("/"), "userinfo sub mismatch")
}

func TestClientSecretPost(t *testing.T) {
	e, op := startWithHostileProvider(t, func(c *config.Config) { c.OIDC.AuthMethod = "client_secret_post" })
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login = %d", resp.StatusCode)
	}
	form, hdr := op.LastTokenRequest()
	if form.Get("client_secret") != testClientSecret || hdr.Get("Authorization") != "" {
		t.Error("client_secret_post did not send the secret in the form only")
	}
}

func TestPrivateKeyJWTClientAuthentication(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "client.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)

	e := newEnv(t)
	op := hostileop.New(t, hostileop.WithClient(testClientID, "", e.callbackURL()),
		hostileop.WithClientKey(testClientID, jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: "ES256"}),
		hostileop.WithPostLogoutRedirectURIs(testClientID, e.publicURL+"/"))
	op.SetClock(e.clock.Now)
	op.SetAccessTokenTTL(5 * time.Minute)
	e.start(op.URL, func(c *config.Config) {
		c.OIDC.ClientSecret = ""
		c.OIDC.AuthMethod = "private_key_jwt"
		c.OIDC.PrivateKeyFile = keyFile
		c.OIDC.PrivateKeyID = "k1"
	})
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login with private_key_jwt = %d", resp.StatusCode)
	}
	form, hdr := op.LastTokenRequest()
	if form.Get("client_assertion") == "" || form.Get("client_secret") != "" || hdr.Get("Authorization") != "" {
		t.Errorf("token request authenticated with %v / %q, want a client assertion only", form, hdr.Get("Authorization"))
	}
	e.clock.Advance(6 * time.Minute)
	if resp := b.api("GET", "/api/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh with private_key_jwt = %d", resp.StatusCode)
	}
	_, claims := b.user()
	lu, _ := claims["bff:logout_url"].(string)
	b.do("GET", lu, nil, false)
	st := op.Stats()
	if st.ClientAssertions != 3 || len(st.Revocations) != 1 || !st.Revocations[0].ClientAuthOK {
		t.Errorf("provider accepted %d assertions and %d revocations, want code, refresh and revocation each authenticated", st.ClientAssertions, len(st.Revocations))
	}
}

func TestProviderWithoutSIDStillGivesAUsableLogoutURL(t *testing.T) {
	e := newEnv(t)
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()), hostileop.WithSID(false))
	e.start(op.URL, nil)
	b := e.browser()
	b.login("/")
	_, claims := b.user()
	if _, ok := claims["sid"]; ok {
		t.Fatal("provider sent a sid; the test needs one without")
	}
	lu, _ := claims["bff:logout_url"].(string)
	sid := strings.TrimPrefix(lu, "/bff/logout?sid=")
	if len(sid) < 16 || sid == lu {
		t.Fatalf("bff:logout_url = %q, want a random sid", lu)
	}
	if r := b.do("GET", "/bff/logout?sid=x"+sid, nil, false); r.StatusCode != http.StatusBadRequest {
		t.Errorf("logout with a wrong sid = %d", r.StatusCode)
	}
	if r := b.do("GET", lu, nil, false); r.StatusCode != http.StatusFound {
		t.Fatalf("logout = %d", r.StatusCode)
	}
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("session alive after logout: %d", status)
	}
}
