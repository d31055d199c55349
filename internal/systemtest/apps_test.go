package systemtest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

// appsEnv is one gateway serving several apps on one TLS loopback server:
// host-based apps at https://<name>.localhost:<port>, path-based apps and
// the top-level app at https://127.0.0.1:<port>.
type appsEnv struct {
	*env
	port string
	// apis are each app's API upstream, by app name.
	apis map[string]*recordingAPI
}

// recordingAPI is an upstream that records the bearer tokens it receives.
type recordingAPI struct {
	*httptest.Server
	mu     sync.Mutex
	tokens []string
	hits   atomic.Int32
}

func newRecordingAPI(t *testing.T) *recordingAPI {
	a := &recordingAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		a.mu.Lock()
		a.tokens = append(a.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"cookie":%q}`, r.URL.Path, r.Header.Get("Cookie"))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *recordingAPI) lastToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.tokens) == 0 {
		return ""
	}
	return a.tokens[len(a.tokens)-1]
}

func newAppsEnv(t *testing.T) *appsEnv {
	e := newEnv(t)
	_, port, _ := net.SplitHostPort(e.srv.Listener.Addr().String())
	return &appsEnv{env: e, port: port, apis: map[string]*recordingAPI{}}
}

// origin is the origin of the host-based app name.
func (e *appsEnv) origin(name string) string { return "https://" + name + ".localhost:" + e.port }

func (e *appsEnv) api(name string) *recordingAPI {
	if e.apis[name] == nil {
		e.apis[name] = newRecordingAPI(e.t)
	}
	return e.apis[name]
}

// hostApp is a host-based app with one API route at /api/.
func (e *appsEnv) hostApp(name, clientID string) config.App {
	return config.App{
		Name: name, PublicURL: e.origin(name),
		OIDC:     config.OIDC{ClientID: clientID, ClientSecret: testClientSecret},
		Routes:   []config.Route{{Prefix: "/api/", Upstream: e.api(name).URL}},
		Frontend: config.Frontend{StaticDir: e.spaDir()},
	}
}

// pathApp is a path-based app with one API route at <path>/api/.
func (e *appsEnv) pathApp(name, clientID string) config.App {
	return config.App{
		Name: name, Path: "/" + name,
		OIDC:     config.OIDC{ClientID: clientID, ClientSecret: testClientSecret},
		Routes:   []config.Route{{Prefix: "/" + name + "/api/", Upstream: e.api(name).URL}},
		Frontend: config.Frontend{StaticDir: e.spaDir()},
	}
}

// startApps starts the gateway with the apps and no top-level app.
func (e *appsEnv) startApps(issuer string, apps ...config.App) {
	e.start(issuer, func(c *config.Config) {
		c.Routes, c.Frontend = nil, config.Frontend{}
		c.Apps = apps
	})
}

// appBrowser is a browser that reaches every host of the gateway.
type appBrowser struct {
	e *appsEnv
	c *http.Client
}

func (e *appsEnv) browser() *appBrowser {
	jar, _ := cookiejar.New(nil)
	gw := e.srv.Listener.Addr().String()
	base := e.srv.Client().Transport.(*http.Transport).Clone()
	// The test certificate names example.com; every gateway host is this
	// server.
	base.TLSClientConfig = &tls.Config{RootCAs: base.TLSClientConfig.RootCAs, ServerName: "example.com"}
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); strings.HasSuffix(host, ".localhost") || addr == gw {
			addr = gw
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &appBrowser{e: e, c: &http.Client{Jar: jar, Transport: base}}
}

func (b *appBrowser) do(method, rawURL string, header map[string]string, follow bool) *http.Response {
	b.e.t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := *b.c
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	resp, err := c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

// api calls rawURL as the SPA's fetch would.
func (b *appBrowser) api(method, rawURL string) *http.Response {
	return b.do(method, rawURL, map[string]string{"X-CSRF": "1"}, false)
}

// login signs in at the app whose endpoints are at base (origin + path),
// returning to the app's own page.
func (b *appBrowser) login(base string) {
	b.e.t.Helper()
	u, _ := url.Parse(base)
	resp := b.do("GET", base+"/bff/login?returnUrl="+url.QueryEscape(u.Path+"/"), nil, true)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		b.e.t.Fatalf("login at %s ended with %d: %s", base, resp.StatusCode, body)
	}
}

func (b *appBrowser) status(base string) int {
	return b.api("GET", base+"/bff/user").StatusCode
}

func (b *appBrowser) cookie(origin, name string) *http.Cookie {
	u, _ := url.Parse(origin)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// twoClients is a provider with the clients of apps shop (host-based) and
// admin (path-based).
func (e *appsEnv) twoClients(opts ...hostileop.Option) *hostileop.Provider {
	top := "https://127.0.0.1:" + e.port
	opts = append([]hostileop.Option{
		hostileop.WithClient("shop-spa", testClientSecret, e.origin("shop")+"/bff/callback"),
		hostileop.WithClient("admin-spa", testClientSecret, top+"/admin/bff/callback"),
	}, opts...)
	return hostileop.New(e.t, opts...)
}

// TestAppsEachSessionBelongsToOneApp: signing in at one app gives no
// session at another, and a session cookie presented to another app's
// endpoints or routes is no session there, its upstream not called.
func TestAppsEachSessionBelongsToOneApp(t *testing.T) {
	e := newAppsEnv(t)
	op := e.twoClients()
	e.startApps(op.URL, e.hostApp("shop", "shop-spa"), e.pathApp("admin", "admin-spa"))
	shop, admin := e.origin("shop"), "https://127.0.0.1:"+e.port+"/admin"

	b := e.browser()
	b.login(shop)
	if got := b.status(shop); got != http.StatusOK {
		t.Fatalf("shop /bff/user = %d after signing in there", got)
	}
	if got := b.status(admin); got != http.StatusUnauthorized {
		t.Fatalf("admin /bff/user = %d after signing in at shop only; want 401", got)
	}
	// The shop cookie, sent to the admin app under the admin cookie's name,
	// is no session there.
	c := b.cookie(shop, "__Host-gatehouse-shop")
	if c == nil {
		t.Fatal("no __Host-gatehouse-shop cookie after login")
	}
	forged := e.browser()
	u, _ := url.Parse("https://127.0.0.1:" + e.port)
	forged.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-gatehouse-admin", Value: c.Value, Path: "/", Secure: true}})
	if got := forged.status(admin); got != http.StatusUnauthorized {
		t.Errorf("shop session under the admin cookie: /bff/user = %d; want 401", got)
	}
	before := e.api("admin").hits.Load()
	if got := forged.api("GET", admin+"/api/x").StatusCode; got != http.StatusUnauthorized {
		t.Errorf("shop session at an admin route = %d; want 401", got)
	}
	if e.api("admin").hits.Load() != before {
		t.Error("the admin upstream was called with the shop's session")
	}
}

// TestAppsSameCookieNameStillIsolated: two apps misconfigured with the
// same cookie name still do not accept each other's sessions.
func TestAppsSameCookieNameStillIsolated(t *testing.T) {
	e := newAppsEnv(t)
	top := "https://127.0.0.1:" + e.port
	op := hostileop.New(t, hostileop.WithClient("a", testClientSecret, top+"/a/bff/callback"),
		hostileop.WithClient("b", testClientSecret, top+"/b/bff/callback"))
	a, bApp := e.pathApp("a", "a"), e.pathApp("b", "b")
	a.Session.CookieName, bApp.Session.CookieName = "__Host-shared", "__Host-shared"
	e.startApps(op.URL, a, bApp)

	br := e.browser()
	br.login(top + "/a")
	if got := br.status(top + "/a"); got != http.StatusOK {
		t.Fatalf("a /bff/user = %d", got)
	}
	// The browser sends the one cookie to both apps: b must not take it.
	if got := br.status(top + "/b"); got != http.StatusUnauthorized {
		t.Errorf("b /bff/user with a's cookie = %d; want 401", got)
	}
	if got := br.api("GET", top+"/b/api/x").StatusCode; got != http.StatusUnauthorized || e.api("b").hits.Load() != 0 {
		t.Errorf("b's route with a's cookie = %d, upstream hits %d; want 401 and none", got, e.api("b").hits.Load())
	}
}

// TestAppsTokensOfTheirOwnClient: each app's API calls carry tokens issued
// to its own client, never another app's.
func TestAppsTokensOfTheirOwnClient(t *testing.T) {
	e := newAppsEnv(t)
	op := e.twoClients()
	e.startApps(op.URL, e.hostApp("shop", "shop-spa"), e.pathApp("admin", "admin-spa"))
	shop, admin := e.origin("shop"), "https://127.0.0.1:"+e.port+"/admin"
	b := e.browser()
	b.login(shop)
	b.login(admin)
	for _, tc := range []struct{ app, url, client string }{{"shop", shop + "/api/x", "shop-spa"}, {"admin", admin + "/api/x", "admin-spa"}} {
		if resp := b.api("GET", tc.url); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s API call = %d", tc.app, resp.StatusCode)
		}
		got, ok := op.TokenClient(e.api(tc.app).lastToken())
		if !ok || got != tc.client {
			t.Errorf("%s upstream got a token of client %q (known %v); want %q", tc.app, got, ok, tc.client)
		}
	}
}

// TestAppsLogoutAndBackchannelActOnOneApp: logout and back-channel logout
// end only their app's sessions; a logout token for one app's client is
// refused by another app's endpoint.
func TestAppsLogoutAndBackchannelActOnOneApp(t *testing.T) {
	e := newAppsEnv(t)
	op := e.twoClients()
	e.startApps(op.URL, e.hostApp("shop", "shop-spa"), e.pathApp("admin", "admin-spa"))
	shop, admin := e.origin("shop"), "https://127.0.0.1:"+e.port+"/admin"
	b := e.browser()
	b.login(shop)
	shopSID := op.LastSID()
	b.login(admin)

	post := func(endpoint, token string) int {
		req, _ := http.NewRequest("POST", endpoint, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	// A token for the shop's client, sent to the admin app, is refused:
	// its aud is not the admin client.
	shopToken := op.LogoutToken(hostileop.LogoutClaims{Audience: "shop-spa", Subject: hostileop.DefaultSubject, SessionID: shopSID})
	if got := post(admin+"/bff/backchannel", shopToken); got != http.StatusBadRequest {
		t.Errorf("shop logout token at the admin app = %d; want 400", got)
	}
	if b.status(shop) != http.StatusOK || b.status(admin) != http.StatusOK {
		t.Fatal("a refused logout token ended a session")
	}
	if got := post(shop+"/bff/backchannel", shopToken); got != http.StatusOK {
		t.Fatalf("shop logout token at the shop = %d; want 200", got)
	}
	if b.status(shop) != http.StatusUnauthorized {
		t.Error("the shop session outlived its back-channel logout")
	}
	if b.status(admin) != http.StatusOK {
		t.Error("the shop's back-channel logout ended the admin session")
	}
	// By subject: the same user, the same issuer, two apps; the shop's
	// logout token ends the shop's sessions only.
	b.login(shop)
	bySub := op.LogoutToken(hostileop.LogoutClaims{Audience: "shop-spa", Subject: hostileop.DefaultSubject})
	if got := post(shop+"/bff/backchannel", bySub); got != http.StatusOK {
		t.Fatalf("subject logout token at the shop = %d", got)
	}
	if b.status(shop) != http.StatusUnauthorized || b.status(admin) != http.StatusOK {
		t.Error("a logout token by subject for the shop did not end exactly the shop's sessions")
	}
	// The admin session lists only the admin app's sessions.
	resp := b.api("GET", admin+"/bff/sessions")
	var list []map[string]any
	json.NewDecoder(resp.Body).Decode(&list)
	if resp.StatusCode != http.StatusOK || len(list) != 1 {
		t.Errorf("admin /bff/sessions = %d with %d sessions; want 200 and 1", resp.StatusCode, len(list))
	}
	// Logout at the admin app ends the admin session only.
	b.login(shop)
	var logoutURL string
	var claims []struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	json.NewDecoder(b.api("GET", admin+"/bff/user").Body).Decode(&claims)
	for _, c := range claims {
		if c.Type == "bff:logout_url" {
			logoutURL, _ = c.Value.(string)
		}
	}
	if !strings.HasPrefix(logoutURL, "/admin/bff/logout?") {
		t.Fatalf("admin bff:logout_url = %q; want it under /admin/bff", logoutURL)
	}
	b.do("GET", "https://127.0.0.1:"+e.port+logoutURL, nil, false)
	if b.status(admin) != http.StatusUnauthorized {
		t.Error("admin logout left the admin session")
	}
	if b.status(shop) != http.StatusOK {
		t.Error("admin logout ended the shop session")
	}
}

// TestAppsOnTwoProviders: two apps on two independent providers; signing
// in at one yields no session at the other, and an authorization response
// of one provider delivered to the other app's callback makes no session.
func TestAppsOnTwoProviders(t *testing.T) {
	e := newAppsEnv(t)
	top := "https://127.0.0.1:" + e.port
	op1 := hostileop.New(t, hostileop.WithClient("one", testClientSecret, top+"/one/bff/callback"))
	op2 := hostileop.New(t, hostileop.WithClient("two", testClientSecret, top+"/two/bff/callback"))
	one, two := e.pathApp("one", "one"), e.pathApp("two", "two")
	two.OIDC.Issuer = op2.URL
	e.startApps(op1.URL, one, two)

	b := e.browser()
	b.login(top + "/one")
	if b.status(top+"/one") != http.StatusOK || b.status(top+"/two") != http.StatusUnauthorized {
		t.Fatal("a login at provider one gave a session to app two, or none to app one")
	}
	// Mix-up: start a login at app one, let provider one answer, and
	// deliver that answer to app two's callback.
	c := e.browser()
	start := c.do("GET", top+"/one/bff/login?returnUrl=/", nil, false)
	authz, err := op1.HTTPClient().Get(start.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	authz.Body.Close()
	cb, err := url.Parse(authz.Header.Get("Location"))
	if err != nil || cb.Query().Get("code") == "" {
		t.Fatalf("provider one did not answer with a code: %v %v", authz.Header.Get("Location"), err)
	}
	resp := c.do("GET", top+"/two/bff/callback?"+cb.RawQuery, nil, false)
	if resp.StatusCode < 400 {
		t.Errorf("app two accepted provider one's authorization response: %d", resp.StatusCode)
	}
	if c.status(top+"/two") != http.StatusUnauthorized {
		t.Error("app two has a session from provider one's code")
	}
}

// TestAppsRouting: a request goes to the app whose origin matches its
// Host, else to the longest matching path, else to the top-level app;
// with no top-level app, 404 JSON.
func TestAppsRouting(t *testing.T) {
	e := newAppsEnv(t)
	top := "https://127.0.0.1:" + e.port
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, top+"/bff/callback"))
	deep := e.pathApp("deep", testClientID)
	deep.Path, deep.Routes[0].Prefix = "/admin/deep", "/admin/deep/api/"
	e.start(op.URL, func(c *config.Config) {
		c.Routes, c.Frontend = []config.Route{{Prefix: "/api/", Upstream: e.api("top").URL}}, config.Frontend{}
		c.Apps = []config.App{e.hostApp("shop", testClientID), e.pathApp("admin", testClientID), deep}
	})
	b := e.browser()
	for _, tc := range []struct{ url, app string }{
		{e.origin("shop") + "/api/x", "shop"},
		{top + "/admin/api/x", "admin"},
		{top + "/admin/deep/api/x", "deep"},
		{top + "/api/x", "top"},
	} {
		// Anonymous calls: 401 from the right app, whose route matched.
		resp := b.api("GET", tc.url)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s = %d; want 401 (the %s route)", tc.url, resp.StatusCode, tc.app)
		}
	}
	if got := b.api("GET", top+"/admin/bff/user").StatusCode; got != http.StatusUnauthorized {
		t.Errorf("admin /bff/user = %d; want 401", got)
	}
	if got := b.api("GET", top+"/deep/api/x").StatusCode; got != http.StatusNotFound {
		t.Errorf("a path of no app = %d; want the top-level app's 404", got)
	}

	// Without a top-level app, a request of no app is 404 JSON.
	e2 := newAppsEnv(t)
	op2 := e2.twoClients()
	e2.startApps(op2.URL, e2.hostApp("shop", "shop-spa"))
	resp := e2.browser().api("GET", "https://127.0.0.1:"+e2.port+"/api/x")
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("no app: %d %s; want 404 JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestReloadUnderLoad: under a steady stream of API calls, a reload adds
// an app, changes a route's upstream and removes an app. No call fails but
// those to the removed app, no session of a remaining app is lost, and a
// file that fails validation changes nothing.
func TestReloadUnderLoad(t *testing.T) {
	e := newAppsEnv(t)
	top := "https://127.0.0.1:" + e.port
	op := hostileop.New(t,
		hostileop.WithClient("keep", testClientSecret, top+"/keep/bff/callback"),
		hostileop.WithClient("gone", testClientSecret, top+"/gone/bff/callback"),
		hostileop.WithClient("new", testClientSecret, top+"/new/bff/callback"))
	op.SetAccessTokenTTL(time.Hour)
	keep, gone := e.pathApp("keep", "keep"), e.pathApp("gone", "gone")
	var running *config.Config
	e.start(op.URL, func(c *config.Config) {
		c.Routes, c.Frontend = nil, config.Frontend{}
		c.Apps = []config.App{keep, gone}
		running = c
	})
	b := e.browser()
	b.login(top + "/keep")
	b.login(top + "/gone")

	stop := make(chan struct{})
	var failures, calls atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if got := b.api("GET", top+"/keep/api/x").StatusCode; got != http.StatusOK {
					failures.Add(1)
					t.Errorf("a call to the kept app failed during reloads: %d", got)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)

	// A file that fails validation is refused whole.
	bad := *running
	bad.Apps = []config.App{keep, {Name: "Bad Name", Path: "/bad"}}
	if err := e.gw.Reload(func() (*config.Config, error) { return &bad, nil }); !errors.Is(err, gatehouse.ErrReloadRefused) {
		t.Fatalf("an invalid configuration: %v; want ErrReloadRefused", err)
	}
	// One that changes the store is refused, naming the key.
	moved := *running
	moved.Session.Store = config.StoreBolt
	moved.Session.Keys = []string{"k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}
	if err := e.gw.Reload(func() (*config.Config, error) { return &moved, nil }); err == nil || !strings.Contains(err.Error(), "session.store") {
		t.Fatalf("a store change: %v; want a refusal naming session.store", err)
	}

	next := *running
	newAPI := newRecordingAPI(t)
	changed := keep
	changed.Routes = []config.Route{{Prefix: "/keep/api/", Upstream: newAPI.URL}}
	next.Apps = []config.App{changed, e.pathApp("new", "new")}
	next.SetDefaults()
	if err := e.gw.Reload(func() (*config.Config, error) { return &next, nil }); err != nil {
		t.Fatalf("reload: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || calls.Load() == 0 {
		t.Fatalf("%d of %d calls to the kept app failed", failures.Load(), calls.Load())
	}
	if newAPI.hits.Load() == 0 {
		t.Error("the changed route's new upstream got no call after the reload")
	}
	if got := b.status(top + "/keep"); got != http.StatusOK {
		t.Errorf("the kept app's session after the reload: %d; want 200 (no re-login)", got)
	}
	if got := b.api("GET", top+"/gone/api/x").StatusCode; got != http.StatusNotFound && got != http.StatusUnauthorized {
		t.Errorf("the removed app's route = %d; want 404 or 401", got)
	}
	if got := b.status(top + "/gone"); got == http.StatusOK {
		t.Error("the removed app's session is still accepted")
	}
	b.login(top + "/new")
	if got := b.api("GET", top+"/new/api/x").StatusCode; got != http.StatusOK {
		t.Errorf("the added app's route = %d; want 200", got)
	}
}
