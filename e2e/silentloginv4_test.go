package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
)

// silentV4SPA is Duende BFF v4's way into the same protocol: the hidden
// <iframe id="bff-silent-login"> loads /bff/login?prompt=none, and the page
// waits for { source: "bff-silent-login", isLoggedIn } from it, 5 s at most.
const silentV4SPA = `window.silentLogin = () => new Promise((resolve) => {
  let timer;
  const done = (result) => {
    clearTimeout(timer);
    window.removeEventListener("message", onMessage);
    document.getElementById("bff-silent-login")?.remove();
    resolve(JSON.stringify(result));
  };
  function onMessage(e) {
    if (e.data && e.data.source === "bff-silent-login") {
      done({ isLoggedIn: e.data.isLoggedIn, origin: e.origin });
    }
  }
  window.addEventListener("message", onMessage);
  timer = setTimeout(() => done({ isLoggedIn: "timeout" }), 5000);
  const frame = document.createElement("iframe");
  frame.id = "bff-silent-login";
  frame.src = "/bff/login?prompt=none";
  frame.style.display = "none";
  document.body.append(frame);
});
`

// TestBrowserSilentLoginThroughLoginPromptNoneInAFrame runs an SPA of our
// own, served from frontend.static_dir, that starts Duende's silent login
// from /bff/login?prompt=none in a hidden frame (Chromium sends
// Sec-Fetch-Dest: iframe): without a provider session the frame answers
// false; with one it answers true and /bff/user is then 200; the same URL
// opened at the top level keeps today's behaviour (back to the return URL
// with error=login_required); a page on another origin that frames it gets
// no message.
func TestBrowserSilentLoginThroughLoginPromptNoneInAFrame(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	gwLn, appURL := listenLocal(t)
	opLn, issuer := listenLocal(t)
	const secret = "silent-v4-secret-0123456789-abcdefghijklmn"
	op, err := devprovider.New(devprovider.Options{
		Issuer: issuer,
		Clients: []devprovider.Client{{ID: "silent-v4", Secret: secret,
			RedirectURIs: []string{appURL + "/bff/callback"}, PostLogoutRedirectURIs: []string{appURL + "/"}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	serveUntilDone(t, opLn, op)

	dir := t.TempDir()
	for name, body := range map[string]string{
		"index.html":   `<!doctype html><title>silent v4</title><body><p id="app">app</p><script src="/silent-v4.js"></script></body>`,
		"silent-v4.js": silentV4SPA,
		"signed.html":  `<!doctype html><title>signed</title><body><p id="signed">signed in</p></body>`,
		"back.html":    `<!doctype html><title>back</title><body><p id="back">back</p></body>`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{
		Server:   config.Server{Listen: gwLn.Addr().String(), PublicURL: appURL},
		OIDC:     config.OIDC{Issuer: issuer, ClientID: "silent-v4", ClientSecret: secret},
		Session:  config.Session{Store: "memory"},
		Frontend: config.Frontend{StaticDir: dir},
	}
	cfg.SetDefaults()
	gw, err := gatehouse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	serveUntilDone(t, gwLn, gw)

	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, foreignPage, appURL+"/bff/login?prompt=none")
	}))
	defer foreign.Close()

	tab := newBrowser(t, ctx)
	type outcome struct {
		IsLoggedIn any    `json:"isLoggedIn"`
		Origin     string `json:"origin"`
	}
	silent := func(step string) outcome {
		t.Helper()
		if err := chromedp.Do(tab, chromedp.Navigate(appURL+"/"), chromedp.WaitVisible(chromedp.CSS("#app"))); err != nil {
			t.Fatalf("%s: open the app: %v", step, err)
		}
		raw, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.silentLogin()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: silentLogin: %v", step, err)
		}
		var o outcome
		if err := json.Unmarshal([]byte(raw), &o); err != nil {
			t.Fatalf("%s: %v in %s", step, err, raw)
		}
		return o
	}
	userStatus := func() int {
		t.Helper()
		n, err := chromedp.Run(tab, chromedp.Evaluate[int](
			`fetch('/bff/user', {headers: {'X-CSRF': '1'}}).then((r) => r.status)`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch /bff/user: %v", err)
		}
		return n
	}

	if o := silent("without a provider session"); o.IsLoggedIn != false || o.Origin != appURL {
		t.Errorf("without a provider session: %+v, want isLoggedIn false from %s", o, appURL)
	}
	if n := userStatus(); n != http.StatusUnauthorized {
		t.Errorf("/bff/user = %d, want 401", n)
	}

	// At the top level, prompt=none without a provider session returns to
	// the app with the error, as before.
	if err := chromedp.Do(tab,
		chromedp.Navigate(appURL+"/bff/login?prompt=none&returnUrl=%2Fback.html"),
		chromedp.WaitVisible(chromedp.CSS("#back")),
	); err != nil {
		t.Fatalf("top-level prompt=none: %v", err)
	}
	back, err := chromedp.Run(tab, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if back != appURL+"/back.html?error=login_required" {
		t.Errorf("top-level prompt=none ended at %s, want /back.html?error=login_required", back)
	}

	// A provider session, and no gateway session.
	if err := chromedp.Do(tab,
		chromedp.Navigate(appURL+"/bff/login?returnUrl=%2Fsigned.html"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "alice"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#signed")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if _, err := chromedp.Call(tab, network.DeleteCookies, network.DeleteCookiesParams{Name: "__Host-gatehouse", URL: appURL + "/"}); err != nil {
		t.Fatal(err)
	}
	if n := userStatus(); n != http.StatusUnauthorized {
		t.Fatalf("/bff/user after dropping the session cookie = %d, want 401", n)
	}
	if o := silent("with a provider session"); o.IsLoggedIn != true || o.Origin != appURL {
		t.Errorf("with a provider session: %+v, want isLoggedIn true from %s", o, appURL)
	}
	if n := userStatus(); n != http.StatusOK {
		t.Errorf("/bff/user after the silent login = %d, want 200", n)
	}

	// Another origin framing the same URL hears nothing.
	if err := chromedp.Do(tab, chromedp.Navigate(foreign.URL+"/")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.probe()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got != "[]" || strings.Contains(got, "bff-silent-login") {
		t.Errorf("a page on another origin received messages from the silent login: %s", got)
	}
}
