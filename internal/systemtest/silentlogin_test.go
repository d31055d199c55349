package systemtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

// silentPage follows a silent login from path (with the given request
// headers on the first request) to the page it ends at, and checks what
// every such page must be: 200, no-store, framable by the app's own origin
// only, its one script allowed by hash in its own CSP and posting Duende's
// message to the page's own origin. It returns the isLoggedIn the page
// reports and the response.
func silentPage(t *testing.T, b *browser, path string, header map[string]string) (bool, *http.Response) {
	t.Helper()
	resp := b.do("GET", path, header, true)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("silent login ended with %d %q at %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Request.URL)
	}
	h := resp.Header
	if h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("silent page Cache-Control %q, Referrer-Policy %q", h.Get("Cache-Control"), h.Get("Referrer-Policy"))
	}
	if h.Get("X-Frame-Options") != "" {
		t.Errorf("silent page sends X-Frame-Options %q", h.Get("X-Frame-Options"))
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("silent page CSP %q, want frame-ancestors 'self' and no unsafe-inline", csp)
	}
	page := string(body)
	start, end := strings.Index(page, "<script>"), strings.Index(page, "</script>")
	if start < 0 || end < start || strings.Count(page, "<script") != 1 {
		t.Fatalf("silent page has not exactly one inline script: %s", page)
	}
	script := page[start+len("<script>") : end]
	sum := sha256.Sum256([]byte(script))
	if !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Errorf("the page's script is not allowed by its own CSP %q", csp)
	}
	if !strings.Contains(script, `source:"bff-silent-login"`) || !strings.Contains(script, "postMessage(") ||
		!strings.Contains(script, "window.location.origin)") || strings.Contains(script, `"*"`) {
		t.Errorf("silent page script does not post Duende's message to its own origin: %s", script)
	}
	switch {
	case strings.Contains(page, `data-logged-in="true"`):
		return true, resp
	case strings.Contains(page, `data-logged-in="false"`):
		return false, resp
	}
	t.Fatalf("silent page states no outcome: %s", page)
	return false, nil
}

func TestSilentLoginSignsInThroughTheIframeProtocol(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	b := e.browser()
	// Without Sec-Fetch-Dest: the endpoint itself means a frame.
	r := b.do("GET", "/bff/silent-login", nil, false)
	if r.StatusCode != http.StatusFound || op.Stats().Authorize != 0 {
		t.Fatalf("/bff/silent-login = %d, want a redirect to the provider", r.StatusCode)
	}
	loggedIn, resp := silentPage(t, b, "/bff/silent-login", nil)
	if !loggedIn {
		t.Fatal("silent login with a provider session reported isLoggedIn false")
	}
	if got := op.LastAuthorize().Get("prompt"); got != "none" {
		t.Errorf("authorization request prompt = %q, want none", got)
	}
	// One redirect URI: the silent login comes back to the usual callback.
	if got := op.LastAuthorize().Get("redirect_uri"); got != e.callbackURL() {
		t.Errorf("redirect_uri = %q, want %q", got, e.callbackURL())
	}
	if resp.Request.URL.Path != "/bff/callback" {
		t.Errorf("silent page served at %s, want the callback", resp.Request.URL.Path)
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Errorf("/bff/user after a silent login = %d, want 200", status)
	}
	everything := b.everything()
	for _, tok := range op.IssuedTokens() {
		if strings.Contains(everything, tok) {
			t.Fatal("a token the provider issued reached the browser")
		}
	}
}

func TestSilentLoginFromLoginEndpointInAFrame(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	b := e.browser()
	loggedIn, _ := silentPage(t, b, "/bff/login?prompt=none", map[string]string{"Sec-Fetch-Dest": "iframe"})
	if !loggedIn {
		t.Fatal("framed /bff/login?prompt=none reported isLoggedIn false")
	}
	if op.LastAuthorize().Get("prompt") != "none" {
		t.Errorf("prompt = %q, want none", op.LastAuthorize().Get("prompt"))
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Errorf("/bff/user = %d, want 200", status)
	}
	// At the top level prompt=none keeps returning to the app.
	op.SetAuthorizeError("login_required")
	top := e.browser()
	resp := top.do("GET", "/bff/login?prompt=none&returnUrl=%2Fapp", map[string]string{"Sec-Fetch-Dest": "document"}, true)
	if resp.Request.URL.Path != "/app" || resp.Request.URL.Query().Get("error") != "login_required" {
		t.Errorf("top-level prompt=none ended at %s, want /app?error=login_required", resp.Request.URL)
	}
}

func TestSilentLoginWithoutProviderSessionAnswersFalse(t *testing.T) {
	for _, code := range []string{"login_required", "interaction_required", "consent_required", "account_selection_required", "server_error"} {
		t.Run(code, func(t *testing.T) {
			e, op := startWithHostileProvider(t, nil)
			op.SetAuthorizeError(code)
			b := e.browser()
			loggedIn, resp := silentPage(t, b, "/bff/silent-login", nil)
			if loggedIn {
				t.Fatalf("%s reported isLoggedIn true", code)
			}
			if c := b.cookie("__Host-gatehouse"); c != nil {
				t.Error("a failed silent login set a session cookie")
			}
			if status, _ := b.user(); status != http.StatusUnauthorized {
				t.Errorf("/bff/user = %d, want 401", status)
			}
			if n := op.Stats().CodeGrants; n != 0 {
				t.Errorf("%d code grants, want 0", n)
			}
			// Each outcome is logged under the callback's request id.
			id := resp.Header.Get("X-Request-Id")
			if id == "" || !logHas(t, e.logs.String(), id, code) {
				t.Errorf("no log line with request id %q and %s:\n%s", id, code, e.logs.String())
			}
		})
	}
}

// logHas reports whether a JSON log line carries request id id and
// mentions want.
func logHas(t *testing.T, logs, id, want string) bool {
	t.Helper()
	for line := range strings.SplitSeq(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["request_id"] == id && strings.Contains(line, want) {
			return true
		}
	}
	return false
}

// TestSilentLoginFailuresAnswerTheFrame: a framed callback that fails a
// check (here: a state this browser never started) still answers the
// frame, with false, so the SPA does not wait for its timeout.
func TestSilentLoginFailuresAnswerTheFrame(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	b := e.browser()
	cb := startLogin(t, b, op, "/bff/silent-login")
	other := e.browser()
	loggedIn, _ := silentPage(t, other, cb, map[string]string{"Sec-Fetch-Dest": "iframe"})
	if loggedIn {
		t.Fatal("a callback for another browser's transaction reported isLoggedIn true")
	}
	// The silent transaction says it is silent even without the header.
	loggedIn, _ = silentPage(t, b, cb, nil)
	if !loggedIn {
		t.Fatal("the genuine silent callback reported isLoggedIn false")
	}
	// Replayed: refused, and still answered as a silent login.
	if loggedIn, _ = silentPage(t, other, cb, map[string]string{"Sec-Fetch-Dest": "iframe"}); loggedIn {
		t.Fatal("a replayed silent callback reported isLoggedIn true")
	}
	op.SetIssParam(hostileop.IssParamWrong)
	if loggedIn, _ := silentPage(t, e.browser(), "/bff/silent-login", nil); loggedIn {
		t.Fatal("a mix-up (wrong iss) reported isLoggedIn true")
	}
}

// TestOnlySilentLoginPagesMayBeFramed: every other gateway response keeps
// frame-ancestors 'none'.
func TestOnlySilentLoginPagesMayBeFramed(t *testing.T) {
	e, op := startWithHostileProvider(t, nil)
	b := e.browser()
	check := func(what string, r *http.Response) {
		t.Helper()
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q, want frame-ancestors 'none'", what, csp)
		}
	}
	check("login redirect", b.do("GET", "/bff/login", nil, false))
	check("framed login without prompt=none", b.do("GET", "/bff/login", map[string]string{"Sec-Fetch-Dest": "iframe"}, false))
	check("callback error page", b.do("GET", "/bff/callback?state=nope&code=x", nil, false))
	resp := b.login("/")
	check("callback redirect", resp.Request.Response)
	check("user endpoint", b.api("GET", "/bff/user"))
	check("frontend page", b.do("GET", "/", nil, false))
	op.SetAuthorizeError("access_denied")
	check("provider error page", e.browser().login("/"))
}
