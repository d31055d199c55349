package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	jsclient "github.com/gatehouse-bff/gatehouse/clients/js"
)

// silentPage loads the helper and exposes silentLogin for a given prefix.
const silentPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>silent login</title></head>
<body><script type="module">
import { createClient } from '/gatehouse.js';
window.runSilent = (prefix, timeout) => createClient({ prefix }).silentLogin({ timeout });
window.ready = true;
</script></body></html>`

// callbackPage is what a silent-login callback answers: a message to the
// parent window, addressed to the origin given in target.
func callbackPage(isLoggedIn bool, target string) string {
	return fmt.Sprintf(`<!doctype html><html><head><meta charset="utf-8"></head><body><script>
window.parent.postMessage({ source: 'bff-silent-login', isLoggedIn: %v }, %q);
</script></body></html>`, isLoggedIn, target)
}

// TestSilentLoginClientInChromium runs the helper's silentLogin() in
// headless Chromium against stand-in endpoints (the gateway's
// /bff/silent-login is tested with the gateway): the frame goes through a
// page on another origin, as it does through the provider, and comes back
// to a callback page on the app's origin, whose message resolves the
// promise; a message from a page of another origin is ignored, so the call
// resolves false at its timeout; the frame is removed every time.
func TestSilentLoginClientInChromium(t *testing.T) {
	chromiumPath(t)
	// other plays the provider: another origin that the frame passes
	// through, and that posts a message of its own to the app.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/authorize":
			next := r.URL.Query().Get("next")
			if u, err := url.Parse(next); err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
				http.Error(w, "bad next", http.StatusBadRequest)
				return
			}
			http.Redirect(w, r, next, http.StatusFound)
		case "/forged":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, callbackPage(true, "*"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer other.Close()

	var appURL string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		html := func(s string) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, s)
		}
		switch r.URL.Path {
		case "/":
			html(silentPage)
		case "/gatehouse.js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(jsclient.Module)
		case "/yes/silent-login", "/no/silent-login":
			mode := strings.Split(r.URL.Path, "/")[1]
			next := appURL + "/" + mode + "/silent-login-callback"
			http.Redirect(w, r, other.URL+"/authorize?next="+url.QueryEscape(next), http.StatusFound)
		case "/yes/silent-login-callback":
			html(callbackPage(true, appURL))
		case "/no/silent-login-callback":
			html(callbackPage(false, appURL))
		case "/forged/silent-login":
			http.Redirect(w, r, other.URL+"/forged", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer app.Close()
	appURL = app.URL

	// The deadline only stops a hung browser; no assertion depends on it.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	tab := newBrowser(t, ctx)
	do(t, tab, "open the page", chromedp.Navigate(app.URL+"/"))
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.ready === true`, chromedp.WithPollingTimeout(eventWait))); err != nil {
		t.Fatalf("page not ready: %v", err)
	}

	tests := []struct {
		prefix  string
		timeout int // ms; the answers come long before it
		want    bool
	}{
		{"/yes", 30_000, true},
		{"/no", 30_000, false},
		// Only the timeout can answer: the forged message is ignored.
		{"/forged", 1_500, false},
	}
	for _, tt := range tests {
		got, err := chromedp.Run(tab, chromedp.Evaluate[bool](
			fmt.Sprintf(`runSilent(%q, %d)`, tt.prefix, tt.timeout), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("silentLogin via %s: %v", tt.prefix, err)
		}
		if got != tt.want {
			t.Errorf("silentLogin via %s = %v, want %v", tt.prefix, got, tt.want)
		}
		left, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll('iframe').length`))
		if err != nil || left != 0 {
			t.Errorf("after silentLogin via %s, %d iframes remain (%v), want 0", tt.prefix, left, err)
		}
	}
}
