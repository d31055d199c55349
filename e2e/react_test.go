package e2e

import (
	"context"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// buildReactPage bundles clients/react/test/browser/app.jsx (React,
// react-dom, the bindings and gatehouse.js, all from the package's locked
// node_modules; nothing from the network at test time) into dir/app.js, next
// to its index.html.
func buildReactPage(t *testing.T, dir string) {
	t.Helper()
	pkg := npmPackage(t, "clients/react")
	esbuild := filepath.Join(pkg, "node_modules", ".bin", "esbuild")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, esbuild, filepath.Join("test", "browser", "app.jsx"),
		"--bundle", "--format=esm", "--jsx=automatic", "--log-level=warning",
		`--define:process.env.NODE_ENV="production"`,
		"--outfile="+filepath.Join(dir, "app.js"))
	cmd.Dir = pkg
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, out)
	}
	copyFile(t, filepath.Join(pkg, "test", "browser", "index.html"), filepath.Join(dir, "index.html"))
}

// TestReactBindings drives a small React page built on clients/react
// (<GatehouseProvider>, useUser, useApi, useGatehouse) in headless
// Chromium: signed out it says so, and an API call answers 401 and sets
// loginRequired without navigating; after login it shows the user's name and
// the API call goes through with a token attached by the gateway, and an
// answer step_up_required navigates to the step-up login; a logout in one
// tab turns a second tab's page signed out.
func TestReactBindings(t *testing.T) {
	chromiumPath(t)
	dir := t.TempDir()
	buildReactPage(t, dir)
	// The deadline only stops a hung browser; no assertion depends on it.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	app := startSPA(t, dir)

	tab := newBrowser(t, ctx)
	do(t, tab, "open the app signed out", chromedp.Navigate(app+"/"), chromedp.WaitVisible(chromedp.CSS("#signed-out")))

	do(t, tab, "call the API signed out",
		chromedp.Click(chromedp.CSS("#call-api")),
		chromedp.WaitVisible(chromedp.CSS("#api-result[data-status]")),
		chromedp.WaitVisible(chromedp.CSS("#login-required")),
	)
	status, err := chromedp.Run(tab, chromedp.AttributeValue(chromedp.CSS("#api-result"), "data-status"))
	if err != nil || status.Value != "401" {
		t.Errorf("signed-out API call: data-status %q (%v), want 401", status.Value, err)
	}
	if loc, err := chromedp.Run(tab, chromedp.Location()); err != nil || loc != app+"/" {
		t.Errorf("after the 401 the page is at %q (%v), want it to stay at %s/ (loginRequired, no navigation)", loc, err, app)
	}

	do(t, tab, "sign in", chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#signed-in")))
	who, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#who")))
	if err != nil || who != "Alice Example" {
		t.Errorf("#who = %q (%v), want Alice Example", who, err)
	}
	if n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll('#login-required').length`)); err != nil || n != 0 {
		t.Errorf("loginRequired still shown after sign-in (%d, %v)", n, err)
	}

	do(t, tab, "call the API signed in",
		chromedp.Click(chromedp.CSS("#call-api")),
		chromedp.WaitVisible(chromedp.CSS("#api-result[data-status]")),
	)
	status, err = chromedp.Run(tab, chromedp.AttributeValue(chromedp.CSS("#api-result"), "data-status"))
	if err != nil || status.Value != "200" {
		t.Errorf("signed-in API call: data-status %q (%v), want 200", status.Value, err)
	}
	body, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#api-result")))
	if err != nil || !strings.Contains(body, `"bearer":true`) || !strings.Contains(body, `"path":"/api/hello"`) {
		t.Errorf("signed-in API call: body %q (%v), want the upstream's answer with a bearer token attached", body, err)
	}

	// An API answer step_up_required navigates to the step-up login with
	// the current page as returnUrl. Only the navigation is checked: what
	// the gateway does with acr_values is its own test's business.
	requests := watchRequests(t, tab)
	mark := requests.len()
	do(t, tab, "call a route that asks for a step-up", chromedp.Click(chromedp.CSS("#call-step-up")))
	var stepUp *url.URL
	for deadline := time.Now().Add(eventWait); stepUp == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, raw := range requests.since(mark) {
			if u, err := url.Parse(raw); err == nil && u.Path == "/bff/login" {
				stepUp = u
				break
			}
		}
	}
	if stepUp == nil {
		t.Fatalf("no navigation to /bff/login after a step_up_required answer; requests: %q", requests.since(mark))
	}
	q := stepUp.Query()
	if q.Get("acr_values") != "urn:example:mfa" || q.Get("max_age") != "300" || q.Get("returnUrl") != "/" {
		t.Errorf("step-up login URL %s, want acr_values=urn:example:mfa, max_age=300, returnUrl=/", stepUp)
	}
	// The login round trip ends on a fresh page (no API result shown yet).
	// Whatever the gateway made of acr_values, the session is still there.
	do(t, tab, "back from the step-up login",
		chromedp.WaitNotPresent(chromedp.CSS("#api-result")),
		chromedp.Navigate(app+"/"),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")))

	// A second tab of the React page follows a logout in the first one.
	tab2 := newTab(t, tab)
	do(t, tab2, "open the app in tab 2", chromedp.Navigate(app+"/"), chromedp.WaitVisible(chromedp.CSS("#signed-in")))
	do(t, tab, "log out in tab 1", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#signed-out")))
	if _, err := chromedp.Run(tab2, chromedp.Poll[bool](`document.querySelector('#signed-out') !== null`,
		chromedp.WithPollingTimeout(eventWait))); err != nil {
		t.Errorf("tab 2 still shows signed in after the logout in tab 1: %v", err)
	}
}

// TestTypeDeclarations type-checks clients/react/test/types/usage.tsx, an
// app's use of both packages, against gatehouse.d.ts and
// gatehouse-react.d.ts with the locked TypeScript and @types/react. Its
// @ts-expect-error lines make it fail when the declarations grow too loose.
func TestTypeDeclarations(t *testing.T) {
	pkg := npmPackage(t, "clients/react")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(pkg, "node_modules", ".bin", "tsc"), "-p", filepath.Join("test", "types"))
	cmd.Dir = pkg
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc: %v\n%s", err, out)
	}
}
