// Package demo runs Gatehouse's self-contained local demo: the gateway, a
// development OpenID provider with users alice and bob, a small example API
// and an example SPA, all on loopback, with sessions in memory. It is for
// trying Gatehouse out; nothing in it is fit for production.
package demo

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	jsclient "github.com/gatehouse-bff/gatehouse/clients/js"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

//go:embed spa
var spa embed.FS

// Options configure the demo.
type Options struct {
	// Listen is the gateway's address; it must be a loopback address.
	// Default "127.0.0.1:8080".
	Listen string
	// Logger receives the gateway's logs; nil means discard.
	Logger *slog.Logger
	// Ready, when set, is called with the demo's URL once everything serves.
	Ready func(url string)
	// Apps is how many apps the gateway serves: 0 or 1 is the one example
	// SPA; 2 or 3 serve that many path-based apps (shop, admin, partner),
	// each with its own client at the provider, session cookie and API, to
	// show that signing in at one does not sign in at another.
	Apps int
}

// MaxApps is the most apps Options.Apps can ask for.
const MaxApps = len(appNames)

// appNames are the demo's apps, in order.
var appNames = [...]string{"shop", "admin", "partner"}

// Run serves the demo until ctx ends.
func Run(ctx context.Context, opts Options, stdout io.Writer) error {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8080"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Apps < 0 || opts.Apps > MaxApps {
		return fmt.Errorf("demo: %d apps asked for; the demo serves 1 to %d", opts.Apps, MaxApps)
	}
	if opts.Apps > 1 {
		return runApps(ctx, opts, stdout)
	}
	gwLn, err := listenLoopback(opts.Listen)
	if err != nil {
		return err
	}
	defer gwLn.Close()
	opLn, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer opLn.Close()
	apiLn, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer apiLn.Close()

	// Browsers treat http://localhost as a secure context, so the Secure,
	// __Host- session cookie works there without TLS.
	publicURL := fmt.Sprintf("http://localhost:%d", gwLn.Addr().(*net.TCPAddr).Port)
	issuer := "http://" + opLn.Addr().String()
	secret := session.NewID()
	op, err := devprovider.New(devprovider.Options{
		Issuer: issuer,
		Clients: []devprovider.Client{{
			ID: "gatehouse-demo", Secret: secret,
			RedirectURIs:           []string{publicURL + "/bff/callback"},
			PostLogoutRedirectURIs: []string{publicURL + "/"},
			BackchannelLogoutURI:   publicURL + "/bff/backchannel",
		}},
		Logger: opts.Logger,
	})
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "gatehouse-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := writeSPA(dir); err != nil {
		return err
	}

	cfg := &config.Config{
		Server:   config.Server{Listen: gwLn.Addr().String(), PublicURL: publicURL},
		OIDC:     config.OIDC{Issuer: issuer, ClientID: "gatehouse-demo", ClientSecret: secret},
		Session:  config.Session{Store: "memory"},
		Routes:   []config.Route{{Prefix: "/api/", Upstream: "http://" + apiLn.Addr().String(), Token: "user"}},
		Frontend: config.Frontend{StaticDir: dir},
	}
	cfg.SetDefaults()
	gw, err := gatehouse.New(cfg, gatehouse.WithLogger(opts.Logger))
	if err != nil {
		return err
	}
	defer gw.Close()

	api, err := newExampleAPI(issuer, "gatehouse-demo", "", &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- op.Serve(ctx, opLn) }()
	go func() { errc <- serve(ctx, apiLn, api) }()
	go func() { errc <- serve(ctx, gwLn, gw) }()

	fmt.Fprintf(stdout, `Gatehouse demo (development only: local provider, in-memory sessions)

  Open      %s
  React     %s/react.html   (the same app built with the React bindings)
  Sign in   alice / alice   or   bob / bob

  gateway   %s
  provider  %s   (development OpenID provider)
  API       http://%s   (reached only through the gateway at /api/)

Press Ctrl+C to stop.
`, publicURL, publicURL, gwLn.Addr(), issuer, apiLn.Addr())
	if opts.Ready != nil {
		opts.Ready(publicURL)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("demo: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("demo: refusing to listen on %s: the demo serves loopback addresses only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return ln, nil
}

func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// writeSPA writes the example SPA and the browser helper to dir: the plain
// page (index.html, app.js) and the same app in React (react.html and
// react.js, a bundle built by spa-react/build.sh and committed, so the demo
// needs no Node to run).
func writeSPA(dir string) error {
	err := fs.WalkDir(spa, "spa", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := spa.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(path)), b, 0o644)
	})
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "gatehouse.js"), jsclient.Module, 0o644)
	}
	if err != nil {
		return fmt.Errorf("demo: write SPA: %w", err)
	}
	return nil
}
