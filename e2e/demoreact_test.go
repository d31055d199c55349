package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-bff/gatehouse/internal/demo"
)

// startDemo runs the no-config demo on a free loopback port until the test
// ends and returns its URL.
func startDemo(t *testing.T, ctx context.Context) string {
	t.Helper()
	demoCtx, stop := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(demoCtx, demo.Options{Listen: "127.0.0.1:0", Ready: func(u string) { ready <- u }}, io.Discard)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("demo.Run: %v", err)
		}
	})
	select {
	case u := <-ready:
		return u
	case err := <-done:
		done <- err
		t.Fatalf("demo did not start: %v", err)
	case <-ctx.Done():
		t.Fatal("demo did not start before the deadline")
	}
	return ""
}

// TestDemoReactPage drives the demo's second page, the same app built with
// the React bindings and served from the embedded bundle, in headless
// Chromium: the plain page links to it; signed out it offers a sign-in;
// through the development provider's login form it signs alice in, shows
// her name and claims from useUser(), calls the example API through
// useApi() with the token attached by the gateway, shows that the page
// reaches no cookie or token, and signs out.
func TestDemoReactPage(t *testing.T) {
	chromiumPath(t) // skip before starting the demo
	// The deadline only stops a hung browser; no assertion depends on it.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	appURL := startDemo(t, ctx)
	tab := newBrowser(t, ctx)
	reactURL := appURL + "/react.html"

	do(t, tab, "follow the plain page's link to the React page",
		chromedp.Navigate(appURL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#react-link")),
		chromedp.Click(chromedp.CSS("#react-link")),
		chromedp.WaitVisible(chromedp.CSS("#signed-out")),
	)
	if loc, err := chromedp.Run(tab, chromedp.Location()); err != nil || loc != reactURL {
		t.Fatalf("the link led to %q (%v), want %s", loc, err, reactURL)
	}
	// React rendered the page: createRoot marks its container.
	isReact, err := chromedp.Run(tab, chromedp.Evaluate[bool](
		`Object.keys(document.getElementById('root')).some((k) => k.startsWith('__reactContainer'))`))
	if err != nil || !isReact {
		t.Errorf("#root is not a React root (%v, %v)", isReact, err)
	}

	do(t, tab, "sign in at the development provider",
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "alice"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")),
		chromedp.WaitVisible(chromedp.CSS("#claims tbody tr")),
	)
	if loc, err := chromedp.Run(tab, chromedp.Location()); err != nil || loc != reactURL {
		t.Errorf("after sign-in the browser is at %q (%v), want back at %s", loc, err, reactURL)
	}
	if who, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#who"))); err != nil || who != "Alice Example" {
		t.Errorf("#who = %q (%v), want Alice Example", who, err)
	}
	claims, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#claims")))
	if err != nil || !regexp.MustCompile(`(?m)^sub\s+alice$`).MatchString(claims) {
		t.Errorf("#claims = %q (%v), want a sub claim of alice", claims, err)
	}

	do(t, tab, "call the example API",
		chromedp.Click(chromedp.CSS("#call-api")),
		chromedp.WaitVisible(chromedp.CSS("#api-result[data-status]")),
	)
	status, err := chromedp.Run(tab, chromedp.AttributeValue(chromedp.CSS("#api-result"), "data-status"))
	if err != nil {
		t.Fatalf("read API status: %v", err)
	}
	body, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#api-result")))
	if err != nil {
		t.Fatalf("read API result: %v", err)
	}
	if status.Value != "200" || !strings.Contains(body, `"subject":"alice"`) || !strings.Contains(body, `"token_verified":true`) {
		t.Errorf("API call: status %q, body %q; want 200 with subject alice and a verified token", status.Value, body)
	}
	if jwtLike.MatchString(body) {
		t.Errorf("the API answer shown on the page holds a JWT: %q", body)
	}

	proof, err := chromedp.Run(tab, chromedp.AttributesAll(chromedp.CSSAll("#proof li")))
	if err != nil {
		t.Fatalf("read proof list: %v", err)
	}
	if len(proof) != 3 {
		t.Errorf("#proof has %d items, want 3", len(proof))
	}
	for i, attrs := range proof {
		if attrs["data-ok"] != "true" {
			t.Errorf("#proof item %d: data-ok=%q, want true", i, attrs["data-ok"])
		}
	}
	docCookie, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || strings.Contains(strings.ToLower(docCookie), "gatehouse") {
		t.Errorf("document.cookie = %q (%v), want no gatehouse cookie", docCookie, err)
	}

	if d := os.Getenv("GATEHOUSE_SCREENSHOT_DIR"); d != "" {
		shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(d, "gatehouse-demo-react-signed-in.png"), shot, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot: %v", err)
		}
	}

	// The gateway ends the session and sends the browser through the
	// provider's end-session endpoint to the demo's post-logout URI, the
	// plain page; the React page is signed out too.
	do(t, tab, "sign out",
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#react-link")),
		chromedp.WaitVisible(chromedp.CSS("#signed-out")),
		chromedp.Navigate(reactURL),
		chromedp.WaitVisible(chromedp.CSS("#signed-out")),
	)
	after, err := chromedp.Run(tab, chromedp.Evaluate[int](
		`fetch('/api/whoami', {headers: {'X-CSRF': '1'}}).then((r) => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || after != 401 {
		t.Errorf("GET /api/whoami after sign-out = %d (%v), want 401", after, err)
	}
}
