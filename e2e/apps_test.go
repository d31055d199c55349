package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-bff/gatehouse/internal/demo"
)

// In the two-app demo, a browser signed in at shop is not signed in at
// admin, and each page says which app it is and what the other's state is.
func TestBrowserTwoAppsDemo(t *testing.T) {
	chromiumPath(t) // skip before starting the demo

	// The deadline only stops a hung browser; no assertion depends on it.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	demoCtx, stopDemo := context.WithCancel(ctx)
	ready := make(chan string, 1)
	demoErr := make(chan error, 1)
	go func() {
		demoErr <- demo.Run(demoCtx, demo.Options{Listen: "127.0.0.1:0", Apps: 2, Ready: func(u string) { ready <- u }}, io.Discard)
	}()
	t.Cleanup(func() {
		stopDemo()
		if err := <-demoErr; err != nil {
			t.Errorf("demo.Run: %v", err)
		}
	})
	var root string
	select {
	case root = <-ready:
	case err := <-demoErr:
		demoErr <- err
		t.Fatalf("demo did not start: %v", err)
	case <-ctx.Done():
		t.Fatal("demo did not start before the deadline")
	}

	bctx := newBrowser(t, ctx)
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return v
	}

	run("open shop and sign in",
		chromedp.Navigate(root+"/shop/"),
		chromedp.WaitVisible(chromedp.CSS("#signed-out")),
		chromedp.WaitVisible(chromedp.CSS(`#other-apps li[data-app="admin"][data-state="signed-out"]`)),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "alice"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")),
		chromedp.WaitVisible(chromedp.CSS(`#other-apps li[data-app="admin"][data-state="signed-out"]`)),
		chromedp.Click(chromedp.CSS("#call-api")),
		chromedp.WaitVisible(chromedp.CSS(`#api-result[data-status]`)),
	)
	if got := text("#app-name"); got != "shop" {
		t.Errorf("#app-name = %q, want shop", got)
	}
	if got := text("#api-result"); !strings.HasPrefix(got, "200") || !strings.Contains(got, `"app":"shop"`) {
		t.Errorf("shop's API call from the page = %q, want 200 from shop's API", got)
	}
	screenshot(t, bctx, "gatehouse-demo-apps.png")

	run("open admin: not signed in there",
		chromedp.Navigate(root+"/admin/"),
		chromedp.WaitVisible(chromedp.CSS(`#other-apps li[data-app="shop"][data-state="signed-in"]`)),
		chromedp.WaitVisible(chromedp.CSS("#signed-out")),
	)
	if got := text("#app-name"); got != "admin" {
		t.Errorf("#app-name = %q, want admin", got)
	}
}

// screenshot saves the page in a temporary directory and, when
// GATEHOUSE_SCREENSHOT_DIR is set, there too.
func screenshot(t *testing.T, bctx context.Context, name string) {
	t.Helper()
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("GATEHOUSE_SCREENSHOT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Errorf("write screenshot: %v", err)
			continue
		}
		t.Logf("screenshot: %s", p)
	}
}
