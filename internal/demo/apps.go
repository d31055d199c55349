package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

// demoApp is one of the apps of the several-apps demo.
type demoApp struct {
	Name   string `json:"name"`
	Base   string `json:"base"`
	Client string `json:"client"`
	Cookie string `json:"cookie"`
	secret string
	api    net.Listener
}

// runApps serves the demo with opts.Apps path-based apps on one gateway:
// each its own client at the development provider, its own session
// cookie, its own example API at <path>/api/ and a copy of the example
// SPA at <path>/. The top level serves a page that links to them.
func runApps(ctx context.Context, opts Options, stdout io.Writer) error {
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

	publicURL := fmt.Sprintf("http://localhost:%d", gwLn.Addr().(*net.TCPAddr).Port)
	issuer := "http://" + opLn.Addr().String()
	apps := make([]*demoApp, opts.Apps)
	for i := range apps {
		name := appNames[i]
		ln, err := listenLoopback("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		apps[i] = &demoApp{Name: name, Base: "/" + name, Client: "gatehouse-demo-" + name,
			Cookie: "__Host-gatehouse-" + name, secret: session.NewID(), api: ln}
	}

	// One client per app, registered with that app's URIs; and one for
	// the top-level page, which never signs anyone in.
	topSecret := session.NewID()
	clients := []devprovider.Client{{
		ID: "gatehouse-demo", Secret: topSecret,
		RedirectURIs:           []string{publicURL + "/bff/callback"},
		PostLogoutRedirectURIs: []string{publicURL + "/"},
	}}
	for _, a := range apps {
		clients = append(clients, devprovider.Client{
			ID: a.Client, Secret: a.secret,
			RedirectURIs:           []string{publicURL + a.Base + "/bff/callback"},
			PostLogoutRedirectURIs: []string{publicURL + a.Base + "/"},
			BackchannelLogoutURI:   publicURL + a.Base + "/bff/backchannel",
		})
	}
	op, err := devprovider.New(devprovider.Options{Issuer: issuer, Clients: clients, Logger: opts.Logger})
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "gatehouse-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := writeLanding(filepath.Join(dir, "top"), apps); err != nil {
		return err
	}
	cfg := &config.Config{
		Server:   config.Server{Listen: gwLn.Addr().String(), PublicURL: publicURL},
		OIDC:     config.OIDC{Issuer: issuer, ClientID: "gatehouse-demo", ClientSecret: topSecret},
		Session:  config.Session{Store: "memory"},
		Frontend: config.Frontend{StaticDir: filepath.Join(dir, "top")},
	}
	for _, a := range apps {
		static := filepath.Join(dir, a.Name)
		if err := writeAppSPA(static, a, apps); err != nil {
			return err
		}
		cfg.Apps = append(cfg.Apps, config.App{
			Name: a.Name, Path: a.Base,
			OIDC:     config.OIDC{ClientID: a.Client, ClientSecret: a.secret},
			Routes:   []config.Route{{Prefix: a.Base + "/api/", Upstream: "http://" + a.api.Addr().String(), Token: "user"}},
			Frontend: config.Frontend{StaticDir: static},
		})
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	gw, err := gatehouse.New(cfg, gatehouse.WithLogger(opts.Logger))
	if err != nil {
		return err
	}
	defer gw.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2+len(apps))
	for _, a := range apps {
		api, err := newExampleAPI(issuer, a.Client, a.Name, &http.Client{Timeout: 5 * time.Second})
		if err != nil {
			return err
		}
		go func() { errc <- serve(ctx, a.api, api) }()
	}
	go func() { errc <- op.Serve(ctx, opLn) }()
	go func() { errc <- serve(ctx, gwLn, gw) }()

	fmt.Fprintf(stdout, "Gatehouse demo with %d apps (development only: local provider, in-memory sessions)\n\n", len(apps))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  Open\t%s/\t(lists the apps)\n", publicURL)
	for _, a := range apps {
		fmt.Fprintf(tw, "  App %s\t%s%s/\tclient %s, cookie %s\n", a.Name, publicURL, a.Base, a.Client, a.Cookie)
	}
	fmt.Fprintf(tw, "  Sign in\talice / alice   or   bob / bob\n")
	fmt.Fprintf(tw, "\tSigning in at one app does not sign you in at another: each has its\n")
	fmt.Fprintf(tw, "\town client, session and cookie. (The provider remembers you, so the\n")
	fmt.Fprintf(tw, "\tsecond app's sign-in needs no password.)\n")
	fmt.Fprintf(tw, "\n  gateway\t%s\n", gwLn.Addr())
	fmt.Fprintf(tw, "  provider\t%s\t(development OpenID provider, one client per app)\n", issuer)
	for _, a := range apps {
		fmt.Fprintf(tw, "  API %s\thttp://%s\t(reached only through the gateway at %s/api/)\n", a.Name, a.api.Addr(), a.Base)
	}
	tw.Flush()
	fmt.Fprint(stdout, `
  These apps are path-based and share one browser origin: a script injected
  into one could use another's session. In production give each app its own
  host (public_url); see "Several apps on one gateway" in the README.

Press Ctrl+C to stop.
`)
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

// writeAppSPA writes the example SPA for app a to dir: index.html at the
// top (a path-based app's static files are looked up by the whole request
// path, and its navigations fall back to index.html) and the assets under
// a.Base, where the page loads them from.
func writeAppSPA(dir string, a *demoApp, apps []*demoApp) error {
	assets := filepath.Join(dir, strings.TrimPrefix(a.Base, "/"))
	if err := os.MkdirAll(assets, 0o755); err != nil {
		return fmt.Errorf("demo: write SPA: %w", err)
	}
	if err := writeSPA(assets); err != nil {
		return err
	}
	page, err := os.ReadFile(filepath.Join(assets, "index.html"))
	if err != nil {
		return fmt.Errorf("demo: write SPA: %w", err)
	}
	if err := os.Remove(filepath.Join(assets, "index.html")); err != nil {
		return fmt.Errorf("demo: write SPA: %w", err)
	}
	all, err := json.Marshal(apps)
	if err != nil {
		return fmt.Errorf("demo: write SPA: %w", err)
	}
	attrs := fmt.Sprintf(`<html lang="en" data-app="%s" data-base="%s" data-apps="%s">`,
		html.EscapeString(a.Name), html.EscapeString(a.Base), html.EscapeString(string(all)))
	out := strings.NewReplacer(
		`<html lang="en">`, attrs,
		`href="/app.css"`, `href="`+a.Base+`/app.css"`,
		`src="/app.js"`, `src="`+a.Base+`/app.js"`,
		`<title>Gatehouse demo SPA</title>`, `<title>`+html.EscapeString(a.Name)+` · Gatehouse demo SPA</title>`,
		`<h1>Gatehouse demo</h1>`, `<h1>Gatehouse demo: app <span id="app-title">`+html.EscapeString(a.Name)+`</span></h1>`,
	).Replace(string(page))
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(out), 0o644); err != nil {
		return fmt.Errorf("demo: write SPA: %w", err)
	}
	return nil
}

// writeLanding writes the top-level page that links to the apps.
func writeLanding(dir string, apps []*demoApp) error {
	var items strings.Builder
	for _, a := range apps {
		fmt.Fprintf(&items, `<li><a href="%s/">app %s</a> at <code>%s/</code>: client <code>%s</code>, cookie <code>%s</code></li>`+"\n",
			html.EscapeString(a.Base), html.EscapeString(a.Name), html.EscapeString(a.Base), html.EscapeString(a.Client), html.EscapeString(a.Cookie))
	}
	page := `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gatehouse demo: several apps</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<header><h1>Gatehouse demo: several apps on one gateway</h1><p class="dev">Development demo: local provider, users <b>alice</b>/<b>alice</b> and <b>bob</b>/<b>bob</b>.</p></header>
<main>
<p>One Gatehouse serves these apps, each with its own OpenID client, session cookie and API:</p>
<ul id="apps">
` + items.String() + `</ul>
<p>Sign in at one and open the other: you are not signed in there until you sign in there too.</p>
<p class="warn">These apps are path-based and share one browser origin, so a script injected into one could use another's session. In production give each app its own host (<code>public_url</code>).</p>
</main>
</body>
</html>
`
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo: write landing page: %w", err)
	}
	css, err := spa.ReadFile("spa/app.css")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "app.css"), css, 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644)
	}
	if err != nil {
		return fmt.Errorf("demo: write landing page: %w", err)
	}
	return nil
}
