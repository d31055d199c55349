package systemtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

// noRateLimit turns the per-client rate limit off: what bounds pending
// logins must be the gateway's own transaction limit.
func noRateLimit(c *config.Config) { c.Server.RateLimit = -1 }

// startLogin begins a login in b and lets the provider answer, stopping
// before the callback; it returns the callback path with its query.
func startLogin(t *testing.T, b *browser, op *hostileop.Provider, path string) string {
	t.Helper()
	resp := b.do("GET", path, nil, false)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET %s = %d, want 302", path, resp.StatusCode)
	}
	presp, err := op.HTTPClient().Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	cb, err := url.Parse(presp.Header.Get("Location"))
	if err != nil || cb.Query().Get("code") == "" {
		t.Fatalf("provider answered %d %q, want a code", presp.StatusCode, presp.Header.Get("Location"))
	}
	return cb.RequestURI()
}

// cookieHeader returns the Gatehouse cookies of the Cookie header b sends
// to the app: what a proxy in front of it would have to accept.
func cookieHeader(t *testing.T, b *browser) string {
	t.Helper()
	var sent string
	c := *b.c
	c.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		sent = req.Header.Get("Cookie")
		return b.c.Transport.RoundTrip(req)
	})
	resp, err := c.Get(b.e.publicURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ours []string
	for part := range strings.SplitSeq(sent, "; ") {
		if strings.HasPrefix(part, "__Host-gatehouse") {
			ours = append(ours, part)
		}
	}
	return strings.Join(ours, "; ")
}

func txCookies(b *browser) int {
	u, _ := url.Parse(b.e.publicURL)
	n := 0
	for _, c := range b.c.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "__Host-gatehouse-tx-") {
			n++
		}
	}
	return n
}

// TestHundredUnfinishedLoginsStayWithinFourKiB: a page that keeps sending
// the browser to /bff/login (100 times, some with the longest return URL
// allowed) leaves at most a few transaction cookies, the app's cookies in
// the Cookie header stay within 4 KiB, and the next login completes.
func TestHundredUnfinishedLoginsStayWithinFourKiB(t *testing.T) {
	e, _ := startWithHostileProvider(t, noRateLimit)
	b := e.browser()
	long := "/" + strings.Repeat("a", 2040)
	maxHeader := 0
	for i := range 100 {
		path := "/bff/login"
		if i%7 == 0 {
			path += "?returnUrl=" + url.QueryEscape(long)
		}
		if r := b.do("GET", path, nil, false); r.StatusCode != http.StatusFound {
			t.Fatalf("login %d = %d, want 302 (no rate limit)", i, r.StatusCode)
		}
		if n := txCookies(b); n > 3 {
			t.Fatalf("after %d logins the browser holds %d transaction cookies, want at most 3", i+1, n)
		}
		if i%10 == 9 {
			maxHeader = max(maxHeader, len(cookieHeader(t, b)))
		}
	}
	maxHeader = max(maxHeader, len(cookieHeader(t, b)))
	t.Logf("largest Gatehouse Cookie header after up to 100 unfinished logins: %d bytes", maxHeader)
	if maxHeader > 4096 {
		t.Errorf("Gatehouse cookies total %d bytes in the Cookie header, want at most 4096", maxHeader)
	}
	resp := b.login("/after")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/after" {
		t.Fatalf("login after 100 unfinished ones ended with %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Errorf("/bff/user after the login = %d, want 200", status)
	}
	// Completing a login cleared every other pending one.
	if n := txCookies(b); n != 0 {
		t.Errorf("%d transaction cookies left after a completed login, want 0", n)
	}
	if h := cookieHeader(t, b); len(h) > 128 {
		t.Errorf("Cookie header after the login is %d bytes: %q", len(h), h)
	}
}

// TestDroppedTransactionStateRefused: the fourth pending login drops the
// first; the first's callback is refused even when the browser still sends
// its cookie (a request already in flight), and its code never reaches the
// provider's token endpoint.
func TestDroppedTransactionStateRefused(t *testing.T) {
	e, op := startWithHostileProvider(t, noRateLimit)
	b := e.browser()
	first := startLogin(t, b, op, "/bff/login?returnUrl=%2Fone")
	u, _ := url.Parse(e.publicURL)
	saved := b.c.Jar.Cookies(u)
	for range 3 {
		startLogin(t, b, op, "/bff/login")
	}
	if n := txCookies(b); n != 3 {
		t.Fatalf("%d transaction cookies after 4 logins, want 3", n)
	}
	// Replay the dropped transaction's cookie as a browser whose deletion
	// did not arrive would.
	late := e.browser()
	for _, c := range saved {
		c.Secure, c.Path = true, "/"
	}
	late.c.Jar.SetCookies(u, saved)
	grants := op.Stats().CodeGrants
	if r := late.do("GET", first, nil, false); r.StatusCode != http.StatusBadRequest {
		t.Errorf("callback of the dropped transaction = %d, want 400", r.StatusCode)
	}
	if r := b.do("GET", first, nil, false); r.StatusCode != http.StatusBadRequest {
		t.Errorf("callback of the dropped transaction without its cookie = %d, want 400", r.StatusCode)
	}
	if n := op.Stats().CodeGrants; n != grants {
		t.Errorf("a dropped state reached the token endpoint (%d code grants, want %d)", n, grants)
	}
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("/bff/user = %d, want 401", status)
	}
}

// TestTwoTabsRaceTheirLogins: two tabs start a login each and both come
// back, in either order. What is right: the first to come back signs the
// browser in; the other is refused cleanly (400 page, no token request),
// because completing a login ends the browser's other pending ones, and
// it leaves the new session alone. No state is accepted twice, even when
// the second tab's request still carries its cookie.
func TestTwoTabsRaceTheirLogins(t *testing.T) {
	for _, order := range []string{"first-started-first", "second-started-first"} {
		t.Run(order, func(t *testing.T) {
			e, op := startWithHostileProvider(t, noRateLimit)
			b := e.browser()
			tabA := startLogin(t, b, op, "/bff/login?returnUrl=%2Fa")
			tabB := startLogin(t, b, op, "/bff/login?returnUrl=%2Fb")
			winner, loser, want := tabA, tabB, "/a"
			if order == "second-started-first" {
				winner, loser, want = tabB, tabA, "/b"
			}
			// The losing tab's callback is already on its way, carrying its
			// cookie, when the winner's response arrives.
			u, _ := url.Parse(e.publicURL)
			inFlight := e.browser()
			saved := b.c.Jar.Cookies(u)
			for _, c := range saved {
				c.Secure, c.Path = true, "/"
			}
			inFlight.c.Jar.SetCookies(u, saved)

			r := b.do("GET", winner, nil, false)
			if r.StatusCode != http.StatusFound || r.Header.Get("Location") != want {
				t.Fatalf("first callback = %d to %q, want 302 to %s", r.StatusCode, r.Header.Get("Location"), want)
			}
			session := b.cookie("__Host-gatehouse")
			if session == nil {
				t.Fatal("first callback set no session cookie")
			}
			if n := txCookies(b); n != 0 {
				t.Errorf("%d transaction cookies left after the first login completed, want 0", n)
			}
			grants := op.Stats().CodeGrants
			if r := b.do("GET", loser, nil, false); r.StatusCode != http.StatusBadRequest {
				t.Errorf("second callback = %d, want 400", r.StatusCode)
			}
			if r := inFlight.do("GET", loser, nil, false); r.StatusCode != http.StatusBadRequest {
				t.Errorf("second callback with its cookie still sent = %d, want 400", r.StatusCode)
			}
			if r := inFlight.do("GET", winner, nil, false); r.StatusCode != http.StatusBadRequest {
				t.Errorf("first callback replayed = %d, want 400", r.StatusCode)
			}
			if n := op.Stats().CodeGrants; n != grants {
				t.Errorf("a refused callback reached the token endpoint (%d code grants, want %d)", n, grants)
			}
			if c := b.cookie("__Host-gatehouse"); c == nil || c.Value != session.Value {
				t.Error("a refused callback changed the session cookie")
			}
			if status, _ := b.user(); status != http.StatusOK {
				t.Errorf("/bff/user after the race = %d, want 200", status)
			}
		})
	}
}

// TestPendingLoginsAreBoundedPerApp: two apps on one host share the
// browser's cookie jar; many unfinished logins at one app drop only that
// app's transactions, and completing a login at one app leaves the other
// app's pending login alone, so that login still completes.
func TestPendingLoginsAreBoundedPerApp(t *testing.T) {
	e := newAppsEnv(t)
	top := "https://127.0.0.1:" + e.port
	op := hostileop.New(t, hostileop.WithClient("a", testClientSecret, top+"/a/bff/callback"),
		hostileop.WithClient("b", testClientSecret, top+"/b/bff/callback"))
	e.start(op.URL, func(c *config.Config) {
		c.Routes, c.Frontend = nil, config.Frontend{}
		c.Apps = []config.App{e.pathApp("a", "a"), e.pathApp("b", "b")}
		noRateLimit(c)
	})
	br := e.browser()
	// b's login is started and answered by the provider, not yet finished.
	resp := br.do("GET", top+"/b/bff/login?returnUrl=%2Fb%2F", nil, false)
	presp, err := op.HTTPClient().Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	bCallback := presp.Header.Get("Location")
	for i := range 20 {
		if r := br.do("GET", top+"/a/bff/login", nil, false); r.StatusCode != http.StatusFound {
			t.Fatalf("login %d at a = %d", i, r.StatusCode)
		}
	}
	u, _ := url.Parse(top)
	count := map[string]int{}
	for _, c := range br.c.Jar.Cookies(u) {
		for _, app := range []string{"a", "b"} {
			if strings.HasPrefix(c.Name, "__Host-gatehouse-"+app+"-tx-") {
				count[app]++
			}
		}
	}
	if count["a"] != 3 || count["b"] != 1 {
		t.Fatalf("transaction cookies after 20 logins at a and 1 at b: %v, want a:3 b:1", count)
	}
	br.login(top + "/a")
	if r := br.do("GET", bCallback, nil, false); r.StatusCode != http.StatusFound {
		t.Fatalf("b's callback after a's logins = %d, want 302", r.StatusCode)
	}
	if got := br.status(top + "/b"); got != http.StatusOK {
		t.Errorf("b /bff/user = %d, want 200", got)
	}
	if got := br.status(top + "/a"); got != http.StatusOK {
		t.Errorf("a /bff/user = %d, want 200", got)
	}
}
