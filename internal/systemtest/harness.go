package systemtest

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
)

const (
	testClientID     = "gatehouse-test"
	testClientSecret = "test-client-secret-0123456789-abcdefghij"
)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// upstream is a loopback API that records what it receives.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	last *http.Request
	hits int
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last = r.Clone(r.Context())
		u.hits++
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "authorized": r.Header.Get("Authorization") != ""})
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) Last() (*http.Request, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.hits
}

// env is one Gateway on a TLS loopback server with an API upstream.
type env struct {
	t         *testing.T
	clock     *testkit.Clock
	srv       *httptest.Server
	gw        *gatehouse.Gateway
	api       *upstream
	logs      *syncBuffer
	publicURL string
	spy       *tokenSpy
	// extra options for gatehouse.New, set before start.
	options []gatehouse.Option
}

// tokenSpy watches the gateway's calls to the provider and collects every
// token and PKCE verifier that crosses them, so tests can search the
// browser's responses and the logs for each.
type tokenSpy struct {
	base   http.RoundTripper
	mu     sync.Mutex
	values []string
}

func (s *tokenSpy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Method == http.MethodPost {
		body, _ := io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil {
			// The authorization code is not listed: it rides the browser's
			// redirect by design, single-use and bound to the PKCE verifier.
			s.add(form.Get("code_verifier"), form.Get("refresh_token"))
		}
	}
	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	if json.Unmarshal(body, &tok) == nil {
		s.add(tok.AccessToken, tok.RefreshToken, tok.IDToken)
	}
	return resp, nil
}

func (s *tokenSpy) add(vs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vs {
		if v != "" {
			s.values = append(s.values, v)
		}
	}
}

// Values returns every token, code and verifier seen so far.
func (s *tokenSpy) Values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.values...)
}

// newEnv reserves the gateway's address; start it with env.start once the
// provider (which must know the redirect URI) is up.
func newEnv(t *testing.T) *env {
	srv := httptest.NewUnstartedServer(nil)
	e := &env{t: t, clock: testkit.NewClock(time.Now()), srv: srv, api: newUpstream(t), logs: &syncBuffer{}, publicURL: "https://" + srv.Listener.Addr().String()}
	t.Cleanup(srv.Close)
	return e
}

func (e *env) spaDir() string {
	dir := e.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>app</title><p>app</p>"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

func (e *env) callbackURL() string { return e.publicURL + "/bff/callback" }

func (e *env) start(issuer string, mutate func(*config.Config)) {
	e.t.Helper()
	e.spy = &tokenSpy{base: http.DefaultTransport}
	e.gw = e.newGateway(issuer, mutate)
	e.srv.Config.Handler = e.gw
	e.srv.StartTLS()
}

// restart replaces the running gateway with a new one built from the same
// issuer and mutate, as a process restart would: the old one is closed
// first (a bolt file allows one process at a time).
func (e *env) restart(issuer string, mutate func(*config.Config)) {
	e.t.Helper()
	e.gw.Close()
	e.gw = e.newGateway(issuer, mutate)
	e.srv.Config.Handler = e.gw
}

func (e *env) newGateway(issuer string, mutate func(*config.Config)) *gatehouse.Gateway {
	e.t.Helper()
	cfg := &config.Config{
		Server:  config.Server{PublicURL: e.publicURL},
		OIDC:    config.OIDC{Issuer: issuer, ClientID: testClientID, ClientSecret: testClientSecret},
		Session: config.Session{Store: "memory"},
		Routes:  []config.Route{{Prefix: "/api/", Upstream: e.api.URL}},
		// A frontend, so that navigations back to the app succeed.
		Frontend: config.Frontend{StaticDir: e.spaDir()},
	}
	if mutate != nil {
		mutate(cfg)
	}
	cfg.SetDefaults()
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := append([]gatehouse.Option{gatehouse.WithLogger(logger), gatehouse.WithClock(e.clock.Now),
		gatehouse.WithHTTPClient(&http.Client{Transport: e.spy, Timeout: 10 * time.Second})}, e.options...)
	gw, err := gatehouse.New(cfg, opts...)
	if err != nil {
		e.t.Fatalf("gatehouse.New: %v", err)
	}
	e.t.Cleanup(func() { gw.Close() })
	return gw
}

// recorded is one response the browser received from the gateway.
type recorded struct {
	URL    string
	Status int
	Header http.Header
	Body   []byte
}

// browser is a cookie-keeping client that records every gateway response.
type browser struct {
	e    *env
	c    *http.Client
	mu   sync.Mutex
	seen []recorded
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{e: e}
	b.c = &http.Client{Jar: jar, Transport: &recorder{b: b, base: e.srv.Client().Transport}}
	return b
}

type recorder struct {
	b    *browser
	base http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.String(), r.b.e.publicURL) {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.b.mu.Lock()
	r.b.seen = append(r.b.seen, recorded{URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header.Clone(), Body: body})
	r.b.mu.Unlock()
	return resp, nil
}

// noFollow returns a copy of the browser's client that stops at redirects.
func (b *browser) noFollow() *http.Client {
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (b *browser) do(method, path string, header map[string]string, follow bool) *http.Response {
	b.e.t.Helper()
	req, err := http.NewRequest(method, b.e.publicURL+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := b.c
	if !follow {
		c = b.noFollow()
	}
	resp, err := c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	b.e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// api calls the gateway as the SPA's fetch would.
func (b *browser) api(method, path string) *http.Response {
	return b.do(method, path, map[string]string{"X-CSRF": "1"}, false)
}

// login runs the whole login flow and returns the final response.
func (b *browser) login(returnURL string) *http.Response {
	b.e.t.Helper()
	return b.do("GET", "/bff/login?returnUrl="+url.QueryEscape(returnURL), nil, true)
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.e.publicURL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// user returns /bff/user's claims as a map (multi-valued claims keep the last).
func (b *browser) user() (int, map[string]any) {
	b.e.t.Helper()
	resp := b.api("GET", "/bff/user")
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var claims []struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&claims); err != nil {
		b.e.t.Fatalf("/bff/user body: %v", err)
	}
	m := map[string]any{}
	for _, c := range claims {
		m[c.Type] = c.Value
	}
	return resp.StatusCode, m
}

// everything returns all headers and bodies the browser received.
func (b *browser) everything() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for _, r := range b.seen {
		sb.WriteString(r.URL + "\n")
		for k, vs := range r.Header {
			sb.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
		}
		sb.Write(r.Body)
		sb.WriteString("\n")
	}
	return sb.String()
}

// setCookies returns the raw Set-Cookie lines the browser received for the
// cookie name, or for every name with the prefix when name ends in "-".
func (b *browser) setCookies(name string) []string {
	match := name + "="
	if strings.HasSuffix(name, "-") {
		match = name
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, r := range b.seen {
		for _, sc := range r.Header.Values("Set-Cookie") {
			if strings.HasPrefix(sc, match) {
				out = append(out, sc)
			}
		}
	}
	return out
}
