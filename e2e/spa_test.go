package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/interoptest"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

// startSPA serves staticDir through a gateway in front of the in-process
// provider, where every sign-in completes as alice without a form, with one
// API route /api/ to a small upstream. It returns the app's URL,
// http://localhost:PORT (a secure context, so the __Host- cookie works over
// plain HTTP on loopback). Everything stops when the test ends.
func startSPA(t *testing.T, staticDir string) string {
	t.Helper()
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		return ln
	}
	gwLn, opLn := listen(), listen()
	publicURL := fmt.Sprintf("http://localhost:%d", gwLn.Addr().(*net.TCPAddr).Port)
	issuer := "http://" + opLn.Addr().String()
	secret := session.NewID()

	op, err := devprovider.New(devprovider.Options{
		Issuer: issuer,
		Clients: []devprovider.Client{{
			ID: "gatehouse-spa", Secret: secret,
			RedirectURIs:           []string{publicURL + "/bff/callback"},
			PostLogoutRedirectURIs: []string{publicURL + "/"},
		}},
		AutoLogin: "alice",
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("devprovider.New: %v", err)
	}

	// The upstream says whether the gateway attached a token; it never
	// echoes one. /api/step-up answers as a route whose require.acr did not
	// hold (issue 12), for the helper's step-up navigation.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/step-up" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"step_up_required","acr_values":"urn:example:mfa","max_age":300}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"path":   r.URL.Path,
			"bearer": strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "),
		})
	}))
	t.Cleanup(api.Close)

	cfg := &config.Config{
		Server:   config.Server{Listen: gwLn.Addr().String(), PublicURL: publicURL},
		OIDC:     config.OIDC{Issuer: issuer, ClientID: "gatehouse-spa", ClientSecret: secret},
		Session:  config.Session{Store: "memory"},
		Routes:   []config.Route{{Prefix: "/api/", Upstream: api.URL, Token: "user"}},
		Frontend: config.Frontend{StaticDir: staticDir},
	}
	cfg.SetDefaults()
	gw, err := gatehouse.New(cfg, gatehouse.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("gatehouse.New: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := op.Serve(ctx, opLn); err != nil {
			t.Errorf("provider: %v", err)
		}
	}()
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer wg.Done()
		if err := srv.Serve(gwLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("gateway: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		wg.Wait()
		gw.Close()
	})
	return publicURL
}

// newBrowser starts headless Chromium (or skips, see chromiumPath) and
// returns the context of its first tab. Further tabs of the same browser
// context, sharing its cookies, come from chromedp.NewContext(tab).
func newBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	execPath := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

// newTab opens another tab in the browser of tab, closed when the test ends.
func newTab(t *testing.T, tab context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(tab)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// requestLog records the URL of every request a tab sends.
type requestLog struct {
	mu   sync.Mutex
	urls []string
}

// watchRequests starts recording the requests of tab.
func watchRequests(t *testing.T, tab context.Context) *requestLog {
	t.Helper()
	l := &requestLog{}
	if err := chromedp.Listen(tab, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
			l.mu.Lock()
			l.urls = append(l.urls, ev.Request.URL)
			l.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("listen: %v", err)
	}
	if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("network.enable: %v", err)
	}
	return l
}

// since returns the URLs recorded after the first n, less the browser's
// own favicon lookups, which it makes when it pleases.
func (l *requestLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, u := range l.urls[n:] {
		if strings.HasPrefix(u, "data:") || strings.HasSuffix(u, "/favicon.ico") {
			continue
		}
		out = append(out, u)
	}
	return out
}

func (l *requestLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.urls)
}

// do runs actions in tab, failing the test with step on error.
func do(t *testing.T, tab context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// repoDir returns dir, a path relative to the module root, as an absolute
// path. Tests run in the package directory, e2e/.
func repoDir(t *testing.T, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", dir))
	if err != nil {
		t.Fatalf("resolve %s: %v", dir, err)
	}
	return abs
}

// npmPackage installs the locked npm dependencies of dir (npm ci, once per
// lock file) and returns dir as an absolute path. Without node or npm, or
// when the install fails, it skips loudly, or fails under CI=true.
func npmPackage(t *testing.T, dir string) string {
	t.Helper()
	abs := repoDir(t, dir)
	missing := func(format string, args ...any) {
		t.Helper()
		msg := "e2e: " + fmt.Sprintf(format, args...) + "; THE " + dir + " BROWSER TEST DID NOT RUN. Install Node.js and npm (apt-get install -y nodejs npm)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("\n\n*** " + msg + " ***\n")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node not found: %v", err)
	}
	if err := interoptest.InstallPackages(abs); err != nil {
		missing("%v", err)
	}
	return abs
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatalf("copy %s: %v", src, err)
	}
	if err := out.Close(); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}
