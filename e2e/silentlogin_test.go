package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
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

// silentSPA is an SPA of our own that uses exactly Duende BFF's silent
// login protocol: a hidden <iframe id="bff-silent-login"> on
// /bff/silent-login and a message { source: "bff-silent-login",
// isLoggedIn } from it, with Duende's samples' 5 second timeout.
const silentSPA = `window.silentLogin = () => new Promise((resolve) => {
  const started = performance.now();
  let timer;
  const done = (result) => {
    clearTimeout(timer);
    window.removeEventListener("message", onMessage);
    document.getElementById("bff-silent-login")?.remove();
    resolve(JSON.stringify({ ...result, ms: performance.now() - started }));
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
  frame.src = "/bff/silent-login";
  frame.style.display = "none";
  document.body.append(frame);
});
`

// foreignPage frames the app's silent login from another origin and
// collects every message it receives until the frame has loaded and a
// further moment has passed.
const foreignPage = `<!doctype html><title>elsewhere</title><body><script>
window.probe = () => new Promise((resolve) => {
  const got = [];
  window.addEventListener("message", (e) => got.push(e.origin + " " + JSON.stringify(e.data)));
  const frame = document.createElement("iframe");
  frame.src = %q;
  frame.onload = () => setTimeout(() => resolve(JSON.stringify(got)), 1500);
  document.body.append(frame);
});
</script></body>`

func listenLocal(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// localhost for both the app and the provider: one site (ports do not
	// count), so the provider's SameSite=Lax session cookie rides the
	// iframe as it would with a provider on the app's own site.
	return ln, fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
}

func serveUntilDone(t *testing.T, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func TestBrowserSilentLoginWithDuendesProtocol(t *testing.T) {
	execPath := chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	gwLn, appURL := listenLocal(t)
	opLn, issuer := listenLocal(t)
	op, err := devprovider.New(devprovider.Options{
		Issuer: issuer,
		Clients: []devprovider.Client{{ID: "silent-spa", Secret: "silent-spa-secret-0123456789-abcdefghijkl",
			RedirectURIs: []string{appURL + "/bff/callback"}, PostLogoutRedirectURIs: []string{appURL + "/"}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	serveUntilDone(t, opLn, op)

	dir := t.TempDir()
	for name, body := range map[string]string{
		"index.html":  `<!doctype html><title>silent</title><body><p id="app">app</p><script src="/silent.js"></script></body>`,
		"silent.js":   silentSPA,
		"signed.html": `<!doctype html><title>signed</title><body><p id="signed">signed in</p></body>`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{
		Server:   config.Server{Listen: gwLn.Addr().String(), PublicURL: appURL},
		OIDC:     config.OIDC{Issuer: issuer, ClientID: "silent-spa", ClientSecret: "silent-spa-secret-0123456789-abcdefghijkl"},
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
		fmt.Fprintf(w, foreignPage, appURL+"/bff/silent-login")
	}))
	defer foreign.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	type outcome struct {
		IsLoggedIn any     `json:"isLoggedIn"`
		Origin     string  `json:"origin"`
		MS         float64 `json:"ms"`
	}
	silent := func(step string) outcome {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Navigate(appURL+"/"), chromedp.WaitVisible(chromedp.CSS("#app"))); err != nil {
			t.Fatalf("%s: open the app: %v", step, err)
		}
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](`window.silentLogin()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: silentLogin: %v", step, err)
		}
		var o outcome
		if err := json.Unmarshal([]byte(raw), &o); err != nil {
			t.Fatalf("%s: %v in %s", step, err, raw)
		}
		t.Logf("%s: isLoggedIn %v after %.0f ms", step, o.IsLoggedIn, o.MS)
		return o
	}
	userStatus := func() int {
		t.Helper()
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](
			`fetch('/bff/user', {headers: {'X-CSRF': '1'}}).then((r) => r.status)`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch /bff/user: %v", err)
		}
		return n
	}

	// Nobody signed in at the provider: the frame answers false.
	if o := silent("without a provider session"); o.IsLoggedIn != false || o.Origin != appURL {
		t.Errorf("without a provider session: %+v, want isLoggedIn false from %s", o, appURL)
	}
	if n := userStatus(); n != http.StatusUnauthorized {
		t.Errorf("/bff/user = %d, want 401", n)
	}

	// Sign in at the provider, then drop the gateway's session: the
	// provider session remains, as when the app's session has expired.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(appURL+"/bff/login?returnUrl=%2Fsigned.html"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "alice"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#signed")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.DeleteCookies, network.DeleteCookiesParams{Name: "__Host-gatehouse", URL: appURL + "/"}); err != nil {
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

	// A page on another origin that frames the endpoint gets nothing.
	if err := chromedp.Do(bctx, chromedp.Navigate(foreign.URL+"/")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[string](`window.probe()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got != "[]" {
		t.Errorf("a page on another origin received messages from the silent login: %s", got)
	}
	if strings.Contains(got, "bff-silent-login") {
		t.Error("the silent login posted to a foreign origin")
	}
}
