package systemtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/dpop"
	"github.com/gatehouse-bff/gatehouse/internal/interoptest"
)

// The interop tests run the gateway against oidc-provider, an independent
// and certified OpenID Provider (see internal/interoptest). They skip loudly
// where Node.js is missing, and fail under CI=true.

// interopSub is the subject the interop provider signs in without a form.
const interopSub = "interop-alice"

// startWithInteropProvider starts the interop provider with the gateway's
// client registered (redirect URI, post-logout URI, credentials), then the
// gateway against it. opts may set the access token TTL and the back-channel
// logout URI; the client settings are filled in here.
func startWithInteropProvider(t *testing.T, e *env, opts interoptest.Options, mutate func(*config.Config)) *interoptest.Provider {
	t.Helper()
	opts.ClientID = testClientID
	opts.ClientSecret = testClientSecret
	opts.RedirectURI = e.callbackURL()
	opts.PostLogoutRedirectURI = e.publicURL + "/"
	opts.AutoLoginSub = interopSub
	op := interoptest.Start(t, opts)
	e.start(op.Issuer(), func(c *config.Config) {
		// oidc-provider offers DPoP; these tests cover the bearer path, and
		// TestInteropDPoP the sender-constrained one.
		c.OIDC.DPoP = "off"
		if mutate != nil {
			mutate(c)
		}
	})
	return op
}

// interopStats reads the provider's counters.
func interopStats(t *testing.T, op *interoptest.Provider) interoptest.Stats {
	t.Helper()
	st, err := op.Stats(t.Context())
	if err != nil {
		t.Fatalf("provider stats: %v", err)
	}
	return st
}

// interopMetadata is the part of the provider's discovery document the
// tests use.
type interopMetadata struct {
	Issuer             string `json:"issuer"`
	UserInfoEndpoint   string `json:"userinfo_endpoint"`
	EndSessionEndpoint string `json:"end_session_endpoint"`
}

func discover(t *testing.T, issuer string) interopMetadata {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	defer resp.Body.Close()
	var m interopMetadata
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery = %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("discovery body: %v", err)
	}
	return m
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// backchannelForwarder is a plain-HTTP loopback reverse proxy to the
// gateway's TLS server. The provider (Node.js) cannot verify the test
// server's self-signed certificate, so it delivers back-channel logout
// tokens here and the forwarder passes them on with the test's trusted TLS
// client. Requests and responses are otherwise forwarded unchanged.
func backchannelForwarder(t *testing.T, e *env) *httptest.Server {
	t.Helper()
	target, err := url.Parse(e.publicURL)
	if err != nil {
		t.Fatal(err)
	}
	fwd := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		// The gateway's TLS client exists only once the gateway started,
		// which is after the provider (which must know this URL) is up.
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return e.srv.Client().Transport.RoundTrip(r)
		}),
	})
	t.Cleanup(fwd.Close)
	return fwd
}

// lastBearer returns the bearer token of the upstream's last request.
func lastBearer(t *testing.T, e *env) string {
	t.Helper()
	last, _ := e.api.Last()
	if last == nil {
		t.Fatal("upstream got no request")
	}
	auth := last.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		t.Fatalf("upstream got Authorization %q, want a bearer token", auth)
	}
	return token
}

func TestInteropLoginUserAPI(t *testing.T) {
	e := newEnv(t)
	op := startWithInteropProvider(t, e, interoptest.Options{}, nil)
	b := e.browser()

	resp := b.login("/app?tab=1")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app" || resp.Request.URL.RawQuery != "tab=1" {
		t.Fatalf("login ended at %s with %d, want the return URL", resp.Request.URL, resp.StatusCode)
	}
	if st := interopStats(t, op); st.Grants["authorization_code"] != 1 || len(st.GrantErrors) != 0 {
		t.Errorf("provider grants %v, errors %v; want one code grant and no error", st.Grants, st.GrantErrors)
	}

	status, claims := b.user()
	if status != http.StatusOK {
		t.Fatalf("/bff/user = %d after login", status)
	}
	if claims["sub"] != interopSub {
		t.Errorf("sub = %v, want %s", claims["sub"], interopSub)
	}
	// The default scopes are openid, profile and offline_access.
	if claims["name"] != "Interop User "+interopSub {
		t.Errorf("name = %v, want the provider's profile claim in the ID token", claims["name"])
	}
	if claims["iss"] != op.Issuer() {
		t.Errorf("iss = %v, want %s", claims["iss"], op.Issuer())
	}
	if lu, _ := claims["bff:logout_url"].(string); !strings.HasPrefix(lu, "/bff/logout?sid=") {
		t.Errorf("bff:logout_url = %q", lu)
	}

	resp = b.api("GET", "/api/orders")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API call = %d", resp.StatusCode)
	}
	last, hits := e.api.Last()
	if hits != 1 || last.URL.Path != "/api/orders" {
		t.Fatalf("upstream hits=%d last=%v, want the API call", hits, last.URL)
	}
	if strings.Contains(last.Header.Get("Cookie"), "__Host-gatehouse") {
		t.Error("upstream received the session cookie")
	}
	// The bearer token is one the provider honours for this user.
	token := lastBearer(t, e)
	md := discover(t, op.Issuer())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, md.UserInfoEndpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	ui, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	defer ui.Body.Close()
	var info struct {
		Sub string `json:"sub"`
	}
	if ui.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(ui.Body)
		t.Fatalf("provider userinfo with the upstream's bearer token = %d: %s", ui.StatusCode, body)
	}
	if err := json.NewDecoder(ui.Body).Decode(&info); err != nil || info.Sub != interopSub {
		t.Errorf("userinfo sub = %q (%v), want %s", info.Sub, err, interopSub)
	}

	// No token the provider issued reached the browser.
	seen := b.everything()
	for _, v := range e.spy.Values() {
		if strings.Contains(seen, v) {
			t.Errorf("a provider token or verifier (%d chars) reached the browser", len(v))
		}
	}
}

func TestInteropRefreshRotation(t *testing.T) {
	e := newEnv(t)
	// Access tokens live 5 s, and the gateway refreshes an hour ahead of
	// expiry, so every API call refreshes, whatever the wall clock does.
	op := startWithInteropProvider(t, e, interoptest.Options{AccessTokenTTL: 5 * time.Second}, func(c *config.Config) {
		c.OIDC.RefreshSkew = time.Hour
	})
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login = %d", resp.StatusCode)
	}

	const sequential = 5
	tokens := map[string]bool{}
	for i := range sequential {
		if resp := b.api("GET", "/api/seq"); resp.StatusCode != http.StatusOK {
			t.Fatalf("sequential call %d = %d", i, resp.StatusCode)
		}
		tokens[lastBearer(t, e)] = true
	}
	st := interopStats(t, op)
	if st.Refreshes != sequential || st.RefreshErrors != 0 {
		t.Fatalf("after %d sequential calls: %d refreshes, %d refresh errors; want %d and 0", sequential, st.Refreshes, st.RefreshErrors, sequential)
	}
	if len(tokens) != sequential {
		t.Errorf("upstream saw %d distinct access tokens over %d refreshing calls", len(tokens), sequential)
	}

	// A burst: each call needs a refresh; the gateway must serialise them
	// and always present the newest refresh token. Replaying a spent one
	// makes the provider fail the grant and revoke it (reuse detection).
	const burst = 20
	var wg sync.WaitGroup
	statuses := make(chan int, burst)
	for range burst {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, e.publicURL+"/api/burst", nil)
			if err != nil {
				statuses <- 0
				return
			}
			req.Header.Set("X-CSRF", "1")
			resp, err := b.noFollow().Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a concurrent call got %d", s)
		}
	}
	// The session still works: its refresh token is the newest one.
	if resp := b.api("GET", "/api/after"); resp.StatusCode != http.StatusOK {
		t.Errorf("call after the burst = %d", resp.StatusCode)
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Errorf("/bff/user after the burst = %d", status)
	}

	st = interopStats(t, op)
	t.Logf("provider stats after the burst: %d refreshes, grants %v", st.Refreshes, st.Grants)
	if st.Refreshes <= sequential+1 {
		t.Errorf("provider saw %d refreshes, want more than %d (the burst and the last call refresh)", st.Refreshes, sequential+1)
	}
	if st.RefreshErrors != 0 || len(st.GrantErrors) != 0 {
		t.Errorf("provider saw %d refresh errors (grant errors %v): a spent refresh token was replayed", st.RefreshErrors, st.GrantErrors)
	}
	if len(st.RevokedGrants) != 0 {
		t.Errorf("provider revoked grants %v, want none", st.RevokedGrants)
	}
}

// xsrfField and formAction pick the provider's logout confirmation form
// apart: oidc-provider renders it as
// <form id="op.logoutForm" method="post" action="..."><input type="hidden" name="xsrf" value="..."/></form>.
var (
	xsrfField  = regexp.MustCompile(`name="xsrf" value="([^"]+)"`)
	formAction = regexp.MustCompile(`<form id="op.logoutForm" method="post" action="([^"]+)"`)
)

func TestInteropLogoutRevokes(t *testing.T) {
	for _, tc := range []struct {
		name string
		hint bool
	}{
		{"client_id only", false},
		{"id_token_hint", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			op := startWithInteropProvider(t, e, interoptest.Options{}, func(c *config.Config) {
				c.OIDC.LogoutIDTokenHint = tc.hint
			})
			b := e.browser()
			if resp := b.login("/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("login = %d", resp.StatusCode)
			}
			status, claims := b.user()
			if status != http.StatusOK {
				t.Fatalf("/bff/user = %d after login", status)
			}
			logoutURL, _ := claims["bff:logout_url"].(string)

			resp := b.do("GET", logoutURL, nil, false)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("logout = %d, want 302", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			md := discover(t, op.Issuer())
			endSession, _ := url.Parse(md.EndSessionEndpoint)
			if loc.Scheme != endSession.Scheme || loc.Host != endSession.Host || loc.Path != endSession.Path {
				t.Fatalf("logout redirect = %s, want the end_session_endpoint %s", loc, md.EndSessionEndpoint)
			}
			q := loc.Query()
			if q.Get("client_id") != testClientID || q.Get("post_logout_redirect_uri") != e.publicURL+"/" {
				t.Errorf("end-session parameters %v, want client_id and the registered post_logout_redirect_uri", q)
			}
			if got := q.Get("id_token_hint") != ""; got != tc.hint {
				t.Errorf("id_token_hint sent = %v, want %v", got, tc.hint)
			}

			st := interopStats(t, op)
			if st.Revocations != 1 || st.RevokedGrants["revocation"] != 1 {
				t.Errorf("provider saw %d revocations, revoked grants %v; want the refresh token's grant revoked once", st.Revocations, st.RevokedGrants)
			}
			if status, _ := b.user(); status != http.StatusUnauthorized {
				t.Errorf("/bff/user after logout = %d, want 401", status)
			}
			if resp := b.api("GET", "/api/orders"); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("API after logout = %d, want 401", resp.StatusCode)
			}

			// The provider accepts the gateway's end-session request: it asks
			// for confirmation, and once confirmed returns to the registered
			// post-logout URI.
			client := b.noFollow()
			page, err := client.Get(loc.String())
			if err != nil {
				t.Fatalf("end-session request: %v", err)
			}
			body, _ := io.ReadAll(page.Body)
			page.Body.Close()
			xsrf, action := xsrfField.FindSubmatch(body), formAction.FindSubmatch(body)
			if page.StatusCode != http.StatusOK || xsrf == nil || action == nil {
				t.Fatalf("end-session request = %d, want the logout confirmation form:\n%s", page.StatusCode, body)
			}
			confirmURL, err := loc.Parse(string(action[1]))
			if err != nil {
				t.Fatal(err)
			}
			done, err := client.PostForm(confirmURL.String(), url.Values{"xsrf": {string(xsrf[1])}, "logout": {"yes"}})
			if err != nil {
				t.Fatalf("end-session confirmation: %v", err)
			}
			done.Body.Close()
			if done.StatusCode/100 != 3 || done.Header.Get("Location") != e.publicURL+"/" {
				t.Errorf("end-session confirmation = %d to %q, want a redirect to %s", done.StatusCode, done.Header.Get("Location"), e.publicURL+"/")
			}
			if st := interopStats(t, op); st.EndSessions != 1 {
				t.Errorf("provider completed %d end-sessions, want 1", st.EndSessions)
			}
		})
	}
}

func TestInteropBackchannelLogout(t *testing.T) {
	e := newEnv(t)
	fwd := backchannelForwarder(t, e)
	op := startWithInteropProvider(t, e, interoptest.Options{BackchannelLogoutURI: fwd.URL + "/bff/backchannel"}, nil)

	// Two browsers of the user, each with its own provider session (sid).
	browsers := []*browser{e.browser(), e.browser()}
	for i, b := range browsers {
		if resp := b.login("/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("login %d = %d", i, resp.StatusCode)
		}
		status, claims := b.user()
		if status != http.StatusOK || claims["sub"] != interopSub {
			t.Fatalf("browser %d: /bff/user = %d, sub %v", i, status, claims["sub"])
		}
		if sid, _ := claims["sid"].(string); sid == "" {
			t.Errorf("browser %d: the ID token carries no sid, so back-channel logout cannot name the session", i)
		}
		if resp := b.api("GET", "/api/orders"); resp.StatusCode != http.StatusOK {
			t.Fatalf("browser %d: API call = %d", i, resp.StatusCode)
		}
	}

	// The forwarder reaches the gateway: an anonymous /bff/user is the
	// gateway's 401, so a failed delivery below is the gateway's answer.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fwd.URL+"/bff/user", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-CSRF", "1")
	resp, err := fwd.Client().Do(req)
	if err != nil {
		t.Fatalf("forwarder: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("forwarded /bff/user = %d (%s), want the gateway's 401", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	if err := op.TriggerBackchannelLogout(t.Context(), interopSub); err != nil {
		st := interopStats(t, op)
		t.Fatalf("back-channel logout: %v (provider delivery errors: %q)", err, st.Backchannel.Errors)
	}
	if st := interopStats(t, op); st.Backchannel.Success != 2 || st.Backchannel.Error != 0 {
		t.Errorf("provider delivered %d back-channel logout tokens with %d errors, want 2 and 0", st.Backchannel.Success, st.Backchannel.Error)
	}
	// Access tokens live 300 s and the gateway refreshes 60 s ahead, so an
	// API call would still succeed from the cached token: only the
	// back-channel logout can end these sessions.
	for i, b := range browsers {
		if status, _ := b.user(); status != http.StatusUnauthorized {
			t.Errorf("browser %d: /bff/user after back-channel logout = %d, want 401", i, status)
		}
		if resp := b.api("GET", "/api/orders"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("browser %d: API after back-channel logout = %d, want 401", i, resp.StatusCode)
		}
	}
}

func TestInteropDPoP(t *testing.T) {
	e := newEnv(t)
	op := startWithInteropProvider(t, e, interoptest.Options{AccessTokenTTL: 5 * time.Second}, func(c *config.Config) {
		c.OIDC.DPoP = "auto"
		c.OIDC.RefreshSkew = time.Hour // every API call refreshes
	})
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login = %d", resp.StatusCode)
	}
	seen := map[string]bool{}
	for i := range 3 {
		if resp := b.api("GET", "/api/orders"); resp.StatusCode != http.StatusOK {
			t.Fatalf("API call %d = %d", i, resp.StatusCode)
		}
		last, _ := e.api.Last()
		token, ok := strings.CutPrefix(last.Header.Get("Authorization"), "DPoP ")
		if !ok {
			t.Fatalf("upstream Authorization %q, want a DPoP-bound token from a DPoP-capable provider", last.Header.Get("Authorization"))
		}
		if _, err := dpop.Verify(last.Header.Get("Dpop"), "GET", e.api.URL+"/api/orders", token, time.Now(), time.Minute); err != nil {
			t.Errorf("upstream proof: %v", err)
		}
		seen[token] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d distinct tokens for 3 refreshing calls", len(seen))
	}
	st := interopStats(t, op)
	if st.Refreshes < 3 || st.RefreshErrors != 0 {
		t.Errorf("provider: %d refreshes, %d refresh errors; want DPoP-bound refreshes without errors", st.Refreshes, st.RefreshErrors)
	}
}
