package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	jsclient "github.com/gatehouse-bff/gatehouse/clients/js"
)

// sessionChange is one change the tabs page recorded from onSessionChange,
// with the page's Date.now() when it arrived.
type sessionChange struct {
	SignedIn bool    `json:"signedIn"`
	Reason   string  `json:"reason"`
	Remote   bool    `json:"remote"`
	At       float64 `json:"at"`
}

// eventWait bounds the wait for a broadcast to arrive. It only stops a test
// whose broadcast never comes; nothing is measured against it (see
// TestTabsAgreeOnSignInAndSignOut).
const eventWait = 15 * time.Second

// waitChange polls tab until the page recorded a change matching the
// JavaScript predicate on c, and returns it.
func waitChange(t *testing.T, tab context.Context, step, predicate string) sessionChange {
	t.Helper()
	c, err := chromedp.Run(tab, chromedp.Poll[sessionChange](
		`window.gatehouseTest && window.gatehouseTest.changes.find((c) => `+predicate+`)`,
		chromedp.WithPollingTimeout(eventWait)))
	if err != nil {
		changes, _ := chromedp.Run(tab, chromedp.Evaluate[[]sessionChange](`window.gatehouseTest ? window.gatehouseTest.changes : []`))
		t.Fatalf("%s: no session change matching %s: %v (changes: %+v)", step, predicate, err, changes)
	}
	return c
}

func countChanges(t *testing.T, tab context.Context) int {
	t.Helper()
	n, err := chromedp.Run(tab, chromedp.Evaluate[int](`window.gatehouseTest.changes.length`))
	if err != nil {
		t.Fatalf("count changes: %v", err)
	}
	return n
}

func pageReady(t *testing.T, tab context.Context, step string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.gatehouseTest && window.gatehouseTest.ready`,
		chromedp.WithPollingTimeout(eventWait))); err != nil {
		t.Fatalf("%s: page not ready: %v", step, err)
	}
}

// TestTabsAgreeOnSignInAndSignOut opens the same SPA page (it uses
// gatehouse.js) in two tabs of one browser: a logout in tab 1 reaches tab
// 2's onSessionChange, and so does a sign-in, without tab 2 sending any
// request. Then two tabs whose helper has no BroadcastChannel do the same
// through storage events.
//
// About "within 1 s" (issue 13): the test asserts the mechanism that gives
// that bound, not a clock. The change must arrive as a broadcast (remote:
// true, reason logout) while tab 2 sends nothing: no polling and no API call,
// so nothing but the browser's own message delivery stands between the click
// and the event. How long that delivery takes on a loaded shared machine is
// not a property of Gatehouse; the test logs it (click to event, including
// tab 1's GET /bff/user?slide=false before it broadcasts) and waits up to
// eventWait only so a broken broadcast fails instead of hanging.
func TestTabsAgreeOnSignInAndSignOut(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"index.html", "tabs.js"} {
		copyFile(t, filepath.Join("testdata", "tabs", name), filepath.Join(dir, name))
	}
	if err := os.WriteFile(filepath.Join(dir, "gatehouse.js"), jsclient.Module, 0o644); err != nil {
		t.Fatal(err)
	}
	// The deadline only stops a hung browser; no assertion depends on it.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	app := startSPA(t, dir)
	const signedIn, signedOut = `#state[data-state="signed-in"]`, `#state[data-state="signed-out"]`

	tab1 := newBrowser(t, ctx)
	do(t, tab1, "open the app", chromedp.Navigate(app+"/"), chromedp.WaitVisible(chromedp.CSS(signedOut)))
	do(t, tab1, "sign in", chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS(signedIn)))
	pageReady(t, tab1, "tab 1 signed in")

	tab2 := newTab(t, tab1)
	requests := watchRequests(t, tab2)
	do(t, tab2, "open the app in tab 2", chromedp.Navigate(app+"/"), chromedp.WaitVisible(chromedp.CSS(signedIn)))
	pageReady(t, tab2, "tab 2")
	expiresIn, err := chromedp.Run(tab2, chromedp.Evaluate[float64](`window.gatehouseTest.expiresIn`))
	if err != nil {
		t.Fatalf("read expiresIn: %v", err)
	}
	t.Logf("tab 2 signed in; bff:session_expires_in = %v s", expiresIn)

	// Logout in tab 1.
	mark := requests.len()
	clickAt, err := chromedp.Run(tab1, chromedp.Evaluate[float64](`Date.now()`))
	if err != nil {
		t.Fatal(err)
	}
	do(t, tab1, "log out in tab 1", chromedp.Click(chromedp.CSS("#logout")))
	out := waitChange(t, tab2, "tab 2 after the logout", `!c.signedIn`)
	if !out.Remote || out.Reason != "logout" {
		t.Errorf("tab 2's change = %+v, want a remote logout", out)
	}
	if sent := requests.since(mark); len(sent) > 0 {
		t.Errorf("tab 2 sent requests after tab 1's logout: %q", sent)
	}
	t.Logf("tab 2 heard the logout %.0f ms after the click in tab 1 (logged, not asserted)", out.At-clickAt)
	if text, err := chromedp.Run(tab2, chromedp.Text(chromedp.CSS("#state"))); err != nil || text != "signed out" {
		t.Errorf("tab 2 shows %q (%v), want signed out", text, err)
	}

	// Tab 1 is back on the app after the provider's end-session; signing in
	// there tells tab 2.
	do(t, tab1, "tab 1 back after logout", chromedp.WaitVisible(chromedp.CSS(signedOut)))
	pageReady(t, tab1, "tab 1 signed out")
	mark = requests.len()
	do(t, tab1, "sign in again in tab 1", chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS(signedIn)))
	in := waitChange(t, tab2, "tab 2 after the sign-in", `c.signedIn`)
	if !in.Remote || in.Reason != "login" {
		t.Errorf("tab 2's change = %+v, want a remote login", in)
	}
	if sent := requests.since(mark); len(sent) > 0 {
		t.Errorf("tab 2 sent requests after tab 1's sign-in: %q", sent)
	}
	tab2Changes := countChanges(t, tab2)

	// Without BroadcastChannel: storage events.
	tab3, tab4 := newTab(t, tab1), newTab(t, tab1)
	requests4 := watchRequests(t, tab4)
	for _, tab := range []context.Context{tab3, tab4} {
		do(t, tab, "open the fallback page", chromedp.Navigate(app+"/?fallback"), chromedp.WaitVisible(chromedp.CSS(signedIn)))
		pageReady(t, tab, "fallback page")
	}
	if mode, err := chromedp.Run(tab4, chromedp.Evaluate[string](`window.gatehouseTest.mode`)); err != nil || mode != "storage" {
		t.Fatalf("tab 4 mode = %q (%v), want storage", mode, err)
	}
	mark = requests4.len()
	do(t, tab3, "log out in tab 3", chromedp.Click(chromedp.CSS("#logout")))
	out = waitChange(t, tab4, "tab 4 after the logout", `!c.signedIn`)
	if !out.Remote || out.Reason != "logout" {
		t.Errorf("tab 4's change = %+v, want a remote logout", out)
	}
	if sent := requests4.since(mark); len(sent) > 0 {
		t.Errorf("tab 4 sent requests after tab 3's logout: %q", sent)
	}
	if n, err := chromedp.Run(tab4, chromedp.Evaluate[int](`localStorage.length`)); err != nil || n != 0 {
		t.Errorf("localStorage holds %d items (%v) after the broadcast, want 0", n, err)
	}
	// The broadcast went through storage only: tab 2, which listens on the
	// BroadcastChannel, did not hear it.
	if n := countChanges(t, tab2); n != tab2Changes {
		t.Errorf("tab 2 recorded %d changes, want %d: the fallback used the BroadcastChannel", n, tab2Changes)
	}
}
