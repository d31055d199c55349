package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// startDemo runs the demo with opts on a free loopback port and returns
// its URL and what it printed.
func startDemo(t *testing.T, opts Options) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	out := &syncBuffer{}
	opts.Listen = "127.0.0.1:0"
	opts.Ready = func(u string) { ready <- u }
	go func() { errc <- Run(ctx, opts, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("demo.Run: %v", err)
		}
	})
	select {
	case u := <-ready:
		return u, out
	case err := <-errc:
		errc <- nil
		t.Fatalf("demo did not start: %v", err)
	}
	return "", nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// demoBrowser is an HTTP client with a cookie jar, like a browser tab.
type demoBrowser struct {
	t *testing.T
	c *http.Client
}

func newDemoBrowser(t *testing.T) *demoBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &demoBrowser{t: t, c: &http.Client{Jar: jar}}
}

func (b *demoBrowser) get(u string, header ...string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var authRequestID = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// signIn signs in at the app under base with the development provider's
// login form, as a person would, and returns the page it ends on.
func (b *demoBrowser) signIn(appURL, user string) *http.Response {
	b.t.Helper()
	resp, err := b.c.Get(appURL + "/bff/login?returnUrl=" + url.QueryEscape(mustPath(b.t, appURL)+"/"))
	if err != nil {
		b.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := authRequestID.FindSubmatch(page)
	if m == nil {
		b.t.Fatalf("login at %s ended at %s (%d) without the provider's form:\n%s", appURL, resp.Request.URL, resp.StatusCode, page)
	}
	form := url.Values{"authRequestID": {string(m[1])}, "username": {user}, "password": {user}}
	resp, err = b.c.PostForm(resp.Request.URL.Scheme+"://"+resp.Request.URL.Host+"/login", form)
	if err != nil {
		b.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func mustPath(t *testing.T, u string) string {
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Path
}

// With --apps 2, a sign-in at one app is a session there and nowhere
// else: the other app's /bff/user and API answer 401.
func TestTwoAppsAreIsolated(t *testing.T) {
	root, out := startDemo(t, Options{Apps: 2})
	shop, admin := root+"/shop", root+"/admin"
	for _, want := range []string{shop + "/", admin + "/", "client gatehouse-demo-shop", "cookie __Host-gatehouse-admin", "share one browser origin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}

	b := newDemoBrowser(t)
	csrf := []string{"X-CSRF", "1"}
	for _, app := range []string{shop, admin} {
		if code, body := b.get(app+"/bff/user", csrf...); code != http.StatusUnauthorized {
			t.Fatalf("%s/bff/user before any sign-in = %d %s, want 401", app, code, body)
		}
	}
	if resp := b.signIn(shop, "alice"); resp.Request.URL.String() != shop+"/" || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in at shop ended at %s with %d, want %s/ with 200", resp.Request.URL, resp.StatusCode, shop)
	}

	code, body := b.get(shop+"/bff/user", csrf...)
	if code != http.StatusOK || !strings.Contains(body, `"alice"`) {
		t.Fatalf("shop /bff/user after signing in at shop = %d %s, want 200 for alice", code, body)
	}
	if code, body := b.get(admin+"/bff/user", csrf...); code != http.StatusUnauthorized {
		t.Errorf("admin /bff/user after signing in at shop = %d %s, want 401", code, body)
	}
	code, body = b.get(shop+"/api/whoami", csrf...)
	var whoami map[string]any
	if err := json.Unmarshal([]byte(body), &whoami); code != http.StatusOK || err != nil ||
		whoami["subject"] != "alice" || whoami["app"] != "shop" || whoami["audience"] != "gatehouse-demo-shop" {
		t.Errorf("shop API = %d %s, want 200 for alice with a token of client gatehouse-demo-shop", code, body)
	}
	if code, body := b.get(admin+"/api/whoami", csrf...); code != http.StatusUnauthorized {
		t.Errorf("admin API after signing in at shop = %d %s, want 401", code, body)
	}

	// Signing in at admin is a sign-in of its own (the provider remembers
	// alice, so there is no form), and leaves shop's session as it was.
	resp, err := b.c.Get(admin + "/bff/login?returnUrl=%2Fadmin%2F")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.String() != admin+"/" {
		t.Fatalf("sign-in at admin ended at %s, want %s/", resp.Request.URL, admin)
	}
	for _, app := range []string{shop, admin} {
		if code, body := b.get(app+"/bff/user", csrf...); code != http.StatusOK || !strings.Contains(body, `"alice"`) {
			t.Errorf("%s/bff/user after signing in at both = %d %s, want 200", app, code, body)
		}
	}
	code, body = b.get(admin+"/api/whoami", csrf...)
	if err := json.Unmarshal([]byte(body), &whoami); code != http.StatusOK || err != nil || whoami["audience"] != "gatehouse-demo-admin" {
		t.Errorf("admin API = %d %s, want 200 with a token of client gatehouse-demo-admin", code, body)
	}

	// Each app's page says which app it is.
	for app, name := range map[string]string{shop: "shop", admin: "admin"} {
		code, page := b.get(app + "/")
		if code != http.StatusOK || !strings.Contains(page, `data-app="`+name+`"`) || !strings.Contains(page, `src="/`+name+`/app.js"`) {
			t.Errorf("%s/ = %d, want the SPA of app %s:\n%s", app, code, name, page)
		}
		if code, js := b.get(app + "/gatehouse.js"); code != http.StatusOK || !strings.Contains(js, "createClient") {
			t.Errorf("%s/gatehouse.js = %d %.80s", app, code, js)
		}
	}
	if code, page := b.get(root + "/"); code != http.StatusOK || !strings.Contains(page, `href="/admin/"`) {
		t.Errorf("the top-level page = %d, want links to the apps:\n%s", code, page)
	}
}

func TestAppsOutOfRange(t *testing.T) {
	for _, n := range []int{-1, MaxApps + 1} {
		if err := Run(t.Context(), Options{Apps: n, Listen: "127.0.0.1:0"}, io.Discard); err == nil {
			t.Errorf("Run with %d apps succeeded", n)
		}
	}
}
