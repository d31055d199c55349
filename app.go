package gatehouse

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/assertion"
	"github.com/gatehouse-bff/gatehouse/internal/backchannel"
	"github.com/gatehouse-bff/gatehouse/internal/bff"
	"github.com/gatehouse-bff/gatehouse/internal/csrf"
	"github.com/gatehouse-bff/gatehouse/internal/frontchannel"
	"github.com/gatehouse-bff/gatehouse/internal/frontend"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/login"
	"github.com/gatehouse-bff/gatehouse/internal/oidcconf"
	"github.com/gatehouse-bff/gatehouse/internal/policy"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/ratelimit"
	"github.com/gatehouse-bff/gatehouse/internal/server"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/streams"
	"github.com/gatehouse-bff/gatehouse/internal/tokens"
)

// app is one application the gateway serves: its OpenID client, its
// session cookie, its session endpoints, API routes and frontend. Apps
// share the gateway's store, keys, logger and metrics. An app is built
// once and never changed: a reload builds a new one.
type app struct {
	// name is "" for the top-level app; path is a path-based app's path.
	name, path string
	cfg        *Config
	// label starts the app's route names in metrics, traces and logs.
	label string

	sessions    *session.Manager
	provider    *provider.Source
	tokens      *tokens.Manager
	login       *login.Handler
	bff         *bff.Handler
	backchannel *backchannel.Handler
	// frontchannel ends sessions from the provider's logout iframe.
	frontchannel *frontchannel.Handler
	csrf         *csrf.Protection
	proxy        *proxy.Proxy
	// streams is the gateway's registry of streams held for sessions.
	streams  *streams.Registry
	frontend http.Handler
	// signer signs identity assertions (nil when no route sends one);
	// policies are the routes' authorization policies by prefix.
	signer   *assertion.Signer
	policies map[string]*policy.Policy

	// endpoints are the session endpoints by name under the prefix; apis
	// the API routes by their proxy route.
	endpoints map[string]http.Handler
	apis      map[*proxy.Route]*apiRoute

	prefix, callbackPath string
}

// newApp builds the app name configured by cfg (resolved: see
// config.App.Resolve). prev, the app of the same name before a reload,
// lends its provider when the OpenID settings did not change, so that
// discovery and keys carry over.
//
// gatehouseCookies reports the cookies of every app on the gateway: none of
// them reaches an upstream or a frontend server, whichever app it is for.
func newApp(g *Gateway, name string, cfg *Config, prev *app, gatehouseCookies func(string) bool) (*app, error) {
	sh := g.sh
	a := &app{name: name, cfg: cfg, prefix: cfg.BFF.Prefix, callbackPath: cfg.OIDC.CallbackPath, streams: sh.streams}
	if name != "" {
		a.label = name + ":"
	}
	var err error
	a.sessions, err = session.NewManager(session.Options{
		Store:           sh.store,
		App:             name,
		Ring:            sh.sessionRing,
		CookieName:      cfg.Session.CookieName,
		SameSite:        cfg.Session.SameSiteMode(),
		IdleTimeout:     cfg.Session.IdleTimeout,
		AbsoluteTimeout: cfg.Session.AbsoluteTimeout,
		MaxPerUser:      cfg.Session.MaxPerUser,
		Now:             sh.now,
		Toucher:         sh.toucher,
		OnEnd: func(ctx context.Context, keys []string, reason string) {
			for range keys {
				sh.metrics.SessionEnded(reason)
			}
			sh.log.InfoContext(ctx, "sessions ended", "app", name, "count", len(keys), "reason", reason)
			sh.streams.End(ctx, keys, reason)
		},
	})
	if err != nil {
		return nil, err
	}
	if prev != nil && reflect.DeepEqual(prev.cfg.OIDC, cfg.OIDC) && prev.cfg.Server.PublicURL == cfg.Server.PublicURL {
		a.provider = prev.provider
	} else {
		po, err := oidcconf.Options(cfg, g.providerClient(cfg), sh.now)
		if err != nil {
			return nil, fmt.Errorf("gatehouse: %w", err)
		}
		a.provider = provider.NewSource(po, 0)
	}
	a.tokens = tokens.New(tokens.Options{
		Provider:  a.provider,
		Sessions:  a.sessions,
		Skew:      cfg.OIDC.RefreshSkew,
		Locker:    sh.locker,
		Now:       sh.now,
		Logger:    sh.log,
		OnRefresh: sh.metrics.Refresh,
	})
	// Each app seals its login transactions with a key of its own, so a
	// transaction cookie never opens at another app.
	txRing := sh.txRing
	if name != "" {
		if txRing, err = sh.txRing.Derive("app " + name); err != nil {
			return nil, err
		}
	}
	acrs, maxAges := stepUps(cfg.Routes)
	a.login, err = login.New(login.Options{
		Provider:      a.provider,
		Sessions:      a.sessions,
		AllowedACR:    acrs,
		AllowedMaxAge: maxAges,
		Ring:          txRing,
		UserInfo:      cfg.OIDC.UserInfo,
		DPoP:          cfg.OIDC.DPoP != config.DPoPOff,
		AuthParams:    cfg.OIDC.AuthParams,
		Logger:        sh.log,
		Now:           sh.now,
		OnLogin:       func(context.Context, *session.Session) { sh.metrics.SessionStarted() },
	})
	if err != nil {
		return nil, err
	}
	a.backchannel, err = backchannel.New(backchannel.Options{
		Provider:    a.provider,
		Sessions:    a.sessions,
		AllSessions: cfg.BFF.BackchannelAllSessions,
		Now:         sh.now,
		Logger:      sh.log,
	})
	if err != nil {
		return nil, err
	}
	a.frontchannel, err = frontchannel.New(frontchannel.Options{Provider: a.provider, Sessions: a.sessions, Logger: sh.log})
	if err != nil {
		return nil, err
	}
	publicURL := strings.TrimSuffix(cfg.Server.PublicURL, "/")
	a.csrf, err = csrf.New(csrf.Options{
		HeaderName:  cfg.BFF.CSRFHeader,
		HeaderValue: cfg.BFF.CSRFValue,
		Origin:      publicURL,
		OnReject:    sh.metrics.CSRFRejected,
	})
	if err != nil {
		return nil, err
	}
	a.bff, err = bff.New(bff.Options{
		Prefix:                cfg.BFF.Prefix,
		Provider:              a.provider,
		Sessions:              a.sessions,
		Tokens:                a.tokens,
		CSRF:                  a.csrf.Check,
		UserClaims:            cfg.BFF.UserClaims,
		RevokeOnLogout:        cfg.OIDC.RevokesOnLogout(),
		PostLogoutRedirectURI: cfg.OIDC.PostLogoutRedirectURI,
		IDTokenHint:           cfg.OIDC.LogoutIDTokenHint,
		Logger:                sh.log,
	})
	if err != nil {
		return nil, err
	}
	if err := a.newAuthz(sh); err != nil {
		return nil, err
	}
	if a.proxy, err = a.newProxy(sh, publicURL, gatehouseCookies); err != nil {
		return nil, err
	}
	if cfg.Frontend.Upstream != "" || cfg.Frontend.StaticDir != "" {
		fo := frontend.Options{StaticDir: cfg.Frontend.StaticDir, Headers: cfg.Frontend.Headers, Transport: sh.transport, StripCookie: gatehouseCookies, Logger: sh.log}
		if cfg.Frontend.Upstream != "" {
			if fo.Upstream, err = url.Parse(cfg.Frontend.Upstream); err != nil {
				return nil, fmt.Errorf("gatehouse: frontend.upstream: %w", err)
			}
		}
		if a.frontend, err = frontend.New(fo); err != nil {
			return nil, err
		}
	}
	a.buildEndpoints(g)
	return a, nil
}

func (a *app) newProxy(sh *shared, publicURL string, gatehouseCookies func(string) bool) (*proxy.Proxy, error) {
	routes := make([]proxy.Route, 0, len(a.cfg.Routes))
	for _, r := range a.cfg.Routes {
		up, err := url.Parse(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("gatehouse: route %s: upstream: %w", r.Prefix, err)
		}
		routes = append(routes, proxy.Route{
			Prefix:      r.Prefix,
			Upstream:    up,
			StripPrefix: r.StripPrefix,
			Timeout:     r.Timeout,
			Methods:     r.Methods,
			// No cookie but those listed; only Gatehouse sets these headers.
			ForwardCookies:  r.ForwardCookies,
			IdentityHeaders: identityHeaders(a.cfg),
		})
	}
	pub, err := url.Parse(publicURL)
	if err != nil {
		return nil, fmt.Errorf("gatehouse: server.public_url: %w", err)
	}
	return proxy.New(routes, proxy.Options{
		Transport:      sh.transport,
		TrustedProxies: sh.trusted,
		PublicURL:      pub,
		// An app's login transaction cookies are named after its session
		// cookie, so gatehouseCookies covers them too.
		StripCookie: gatehouseCookies,
		Logger:      sh.log,
		OnLeak:      sh.metrics.LeakBlocked,
	})
}

// serveHTTP routes a request of this app: the session endpoints under the
// BFF prefix, then the API routes, then the frontend.
func (a *app) serveHTTP(g *Gateway, w http.ResponseWriter, r *http.Request) {
	if name, h := a.route(r); h != nil {
		g.serve(a.label+name, w, r, h.ServeHTTP)
		return
	}
	if m, ok := a.proxy.Match(r); ok {
		api := a.apis[m.Route]
		g.serve(api.name, w, r, func(w http.ResponseWriter, r *http.Request) { a.serveAPI(w, r, api, m) })
		return
	}
	if a.frontend != nil {
		g.serve(a.label+"frontend", w, r, a.frontend.ServeHTTP)
		return
	}
	g.serve(a.label+"not_found", w, r, notFound)
}

// route picks the app's own handler for r and a low-cardinality name for
// it, or nil when r is for an API route or the frontend.
func (a *app) route(r *http.Request) (string, http.Handler) {
	if r.URL.Path == a.callbackPath {
		return "bff_callback", a.endpoints["callback"]
	}
	rest, ok := strings.CutPrefix(r.URL.Path, a.prefix+"/")
	if !ok {
		return "", nil
	}
	if h, ok := a.endpoints[rest]; ok {
		return "bff_" + rest, h
	}
	if strings.HasPrefix(rest, "sessions/") {
		return "bff_sessions", a.endpoints["sessions"]
	}
	return "not_found", http.HandlerFunc(notFound)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	httpx.JSONError(w, r, http.StatusNotFound, "not_found", "")
}

// buildEndpoints prepares the handler of each session endpoint, with the
// body limit and, for the endpoints anyone can call without a session, the
// per-client rate limit.
func (a *app) buildEndpoints(g *Gateway) {
	srv := g.sh.cfg.Server
	limitBody := func(h http.Handler) http.Handler {
		return server.WriteDeadline(srv.WriteTimeout, server.LimitBody(srv.MaxBodyBytes, h))
	}
	limited := func(name string, h http.Handler) http.Handler {
		if srv.RateLimit < 0 {
			return h
		}
		l := ratelimit.New(ratelimit.Options{
			Rate:      rate.Limit(float64(srv.RateLimit) / 60),
			Burst:     srv.RateLimit,
			OnLimited: func(*http.Request) { g.sh.metrics.RateLimited(name) },
		})
		return l.Handler(g.clientIP, h)
	}
	a.endpoints = map[string]http.Handler{
		"login":    limited("bff_login", limitBody(http.HandlerFunc(a.login.Login))),
		"callback": limited("bff_callback", limitBody(http.HandlerFunc(a.login.Callback))),
		// Duende BFF's silent login, loaded by the SPA in a hidden iframe.
		"silent-login": limited("bff_silent-login", limitBody(http.HandlerFunc(a.login.SilentLogin))),
		// Server to server: the signed logout token is the only
		// credential, so no CSRF check and no session.
		"backchannel": limited("bff_backchannel", limitBody(a.backchannel)),
		// Loaded by the provider in an iframe, without cookies: iss and
		// sid are the request.
		"frontchannel": limited("bff_frontchannel", limitBody(a.frontchannel)),
		"user":         limitBody(http.HandlerFunc(a.bff.User)),
		"logout":       limitBody(http.HandlerFunc(a.bff.Logout)),
		"sessions":     limitBody(http.HandlerFunc(a.bff.Sessions)),
	}
	if a.signer != nil {
		// The assertion keys, for APIs (apiauth) to verify with.
		a.endpoints["jwks.json"] = http.HandlerFunc(a.signer.JWKS)
	}
	if a.cfg.BFF.Diagnostics {
		// Development only; loopback callers, metadata only.
		a.endpoints["diagnostics"] = limitBody(a.bff.Diagnostics(a.cfg.Routes))
	}
	if a.name == "" {
		a.endpoints["healthz"] = http.HandlerFunc(g.Healthz)
		a.endpoints["readyz"] = http.HandlerFunc(g.Readyz)
	}
	a.apis = make(map[*proxy.Route]*apiRoute)
	for _, route := range a.proxy.Routes() {
		for _, rc := range a.cfg.Routes {
			if rc.Prefix == route.Prefix {
				a.apis[route] = &apiRoute{
					name:   a.label + "api:" + rc.Prefix,
					need:   tokens.Need{Mode: rc.Token, Audience: rc.Audience, Resource: rc.Resource, Exchange: rc.TokenExchange},
					policy: a.policies[rc.Prefix],
				}
			}
		}
	}
}

// issuer returns the app's provider's verified issuer.
func (a *app) issuer(ctx context.Context) (string, error) {
	p, err := a.provider.Get(ctx)
	if err != nil {
		return "", err
	}
	return p.Issuer(), nil
}

// stepUps returns the acr values and max ages a step-up login may ask for:
// those some route requires (a max age in whole seconds, as the 401 that
// asks for it states it).
func stepUps(routes []config.Route) (acrs []string, maxAges []time.Duration) {
	for _, r := range routes {
		for _, v := range r.Require.ACR {
			if !slices.Contains(acrs, v) {
				acrs = append(acrs, v)
			}
		}
		if m := r.Require.MaxAge; m > 0 {
			if m = m.Round(time.Second); m < r.Require.MaxAge {
				m += time.Second
			}
			if !slices.Contains(maxAges, m) {
				maxAges = append(maxAges, m)
			}
		}
	}
	return acrs, maxAges
}
