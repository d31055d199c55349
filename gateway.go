package gatehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/admin"
	"github.com/gatehouse-bff/gatehouse/internal/backchannel"
	"github.com/gatehouse-bff/gatehouse/internal/bff"
	"github.com/gatehouse-bff/gatehouse/internal/csrf"
	"github.com/gatehouse-bff/gatehouse/internal/dpop"
	"github.com/gatehouse-bff/gatehouse/internal/frontend"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/logging"
	"github.com/gatehouse-bff/gatehouse/internal/login"
	"github.com/gatehouse-bff/gatehouse/internal/metrics"
	"github.com/gatehouse-bff/gatehouse/internal/oidcconf"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/ratelimit"
	"github.com/gatehouse-bff/gatehouse/internal/redisconf"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/server"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/tokens"
	"github.com/gatehouse-bff/gatehouse/internal/tracing"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/boltstore"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
)

// Config is Gatehouse's configuration; see package config.
type Config = config.Config

// Option changes how New builds a Gateway.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	httpClient *http.Client
	transport  http.RoundTripper
	now        func() time.Time
	store      store.Store
	registerer prometheus.Registerer
	tracing    *tracing.Tracing
}

// WithLogger sets the logger. Gatehouse redacts credentials from what it
// logs through it and adds each request's id. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPClient sets the client for calls to the OpenID provider.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithTransport sets the transport for calls to upstream APIs.
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

// WithClock sets the clock for sessions and token checks.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithStore uses s instead of the store the configuration names. The
// Gateway closes it on Close.
func WithStore(s store.Store) Option { return func(o *options) { o.store = s } }

// WithMetrics registers the gateway's Prometheus metrics with reg
// (gatehouse_* series: requests by route, sessions started and ended by
// reason, refreshes, CSRF rejections, store and provider calls).
func WithMetrics(reg prometheus.Registerer) Option { return func(o *options) { o.registerer = reg } }

// WithTracerProvider traces provider, store and upstream calls with spans
// from tp, and sends a W3C traceparent upstream. Inbound requests are
// traced by the embedder's own HTTP middleware (otelhttp, say).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracing = tracing.FromProvider(tp) }
}

// Gateway is the BFF: an http.Handler serving the session endpoints, the
// API routes and the frontend. It is safe for concurrent use.
type Gateway struct {
	cfg      *Config
	log      *slog.Logger
	store    store.Store
	sessions *session.Manager
	provider *provider.Source
	tokens   *tokens.Manager
	login    *login.Handler
	bff      *bff.Handler
	// backchannel ends sessions when the provider says so.
	backchannel *backchannel.Handler
	csrf        *csrf.Protection
	proxy       *proxy.Proxy
	frontend    http.Handler
	trusted     []netip.Prefix
	metrics     *metrics.Metrics

	// endpoints are the session endpoints by name under the prefix; apis
	// the API routes by their proxy route.
	endpoints map[string]http.Handler
	apis      map[*proxy.Route]*apiRoute

	prefix, callbackPath string
}

// New validates cfg and builds a Gateway. It does not contact the
// provider: discovery happens on first use and is retried until it works.
func New(cfg *Config, opts ...Option) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gatehouse: invalid configuration: %w", err)
	}
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	o.logger = logging.ForGatehouse(o.logger)
	if o.now == nil {
		o.now = time.Now
	}
	var m *metrics.Metrics
	if o.registerer != nil {
		var err error
		if m, err = metrics.New(o.registerer); err != nil {
			return nil, fmt.Errorf("gatehouse: %w", err)
		}
	}
	if o.httpClient == nil {
		o.httpClient = &http.Client{Timeout: cfg.OIDC.Timeout}
	}
	o.httpClient = providerClient(o.httpClient, m, &o, cfg.OIDC.DPoP != config.DPoPOff)
	if o.tracing.Enabled() {
		if o.transport == nil {
			o.transport = proxy.NewTransport()
		}
		o.transport = o.tracing.Transport("upstream", o.transport)
	}
	g := &Gateway{cfg: cfg, log: o.logger, metrics: m, prefix: cfg.BFF.Prefix, callbackPath: cfg.OIDC.CallbackPath}
	for _, tp := range cfg.Server.TrustedProxies {
		p, err := config.ParsePrefix(tp)
		if err != nil {
			return nil, fmt.Errorf("gatehouse: server.trusted_proxies: %w", err)
		}
		g.trusted = append(g.trusted, p)
	}

	ring, err := keyRing(cfg)
	if err != nil {
		return nil, err
	}
	sessionRing, err := ring.Derive("session")
	if err != nil {
		return nil, err
	}
	txRing, err := ring.Derive("login transaction")
	if err != nil {
		return nil, err
	}

	g.store = o.store
	if g.store == nil {
		if g.store, err = openStore(cfg, o.now); err != nil {
			return nil, err
		}
	}
	// A store shared between processes serialises refreshes across them.
	locker, _ := g.store.(store.Locker)
	g.store = metrics.InstrumentStore(g.metrics, o.tracing.Store(g.store))
	built := false
	defer func() {
		if !built {
			g.store.Close()
		}
	}()
	g.sessions, err = session.NewManager(session.Options{
		Store:           g.store,
		Ring:            sessionRing,
		CookieName:      cfg.Session.CookieName,
		SameSite:        cfg.Session.SameSiteMode(),
		IdleTimeout:     cfg.Session.IdleTimeout,
		AbsoluteTimeout: cfg.Session.AbsoluteTimeout,
		Now:             o.now,
		OnEnd: func(ctx context.Context, keys []string, reason string) {
			for range keys {
				g.metrics.SessionEnded(reason)
			}
			g.log.InfoContext(ctx, "sessions ended", "count", len(keys), "reason", reason)
		},
	})
	if err != nil {
		return nil, err
	}

	publicURL := strings.TrimSuffix(cfg.Server.PublicURL, "/")
	po, err := oidcconf.Options(cfg, o.httpClient, o.now)
	if err != nil {
		return nil, fmt.Errorf("gatehouse: %w", err)
	}
	g.provider = provider.NewSource(po, 0)
	g.tokens = tokens.New(tokens.Options{
		Provider:  g.provider,
		Sessions:  g.sessions,
		Skew:      cfg.OIDC.RefreshSkew,
		Locker:    locker,
		Now:       o.now,
		Logger:    g.log,
		OnRefresh: g.metrics.Refresh,
	})
	g.login, err = login.New(login.Options{
		Provider:   g.provider,
		Sessions:   g.sessions,
		Ring:       txRing,
		UserInfo:   cfg.OIDC.UserInfo,
		DPoP:       cfg.OIDC.DPoP != config.DPoPOff,
		AuthParams: cfg.OIDC.AuthParams,
		Logger:     g.log,
		Now:        o.now,
		OnLogin:    func(context.Context, *session.Session) { g.metrics.SessionStarted() },
	})
	if err != nil {
		return nil, err
	}
	g.backchannel, err = backchannel.New(backchannel.Options{
		Provider:    g.provider,
		Sessions:    g.sessions,
		AllSessions: cfg.BFF.BackchannelAllSessions,
		Now:         o.now,
		Logger:      g.log,
	})
	if err != nil {
		return nil, err
	}
	g.csrf, err = csrf.New(csrf.Options{
		HeaderName:  cfg.BFF.CSRFHeader,
		HeaderValue: cfg.BFF.CSRFValue,
		Origin:      publicURL,
		OnReject:    g.metrics.CSRFRejected,
	})
	if err != nil {
		return nil, err
	}
	g.bff, err = bff.New(bff.Options{
		Prefix:                cfg.BFF.Prefix,
		Provider:              g.provider,
		Sessions:              g.sessions,
		Tokens:                g.tokens,
		CSRF:                  g.csrf.Check,
		UserClaims:            cfg.BFF.UserClaims,
		RevokeOnLogout:        cfg.OIDC.RevokesOnLogout(),
		PostLogoutRedirectURI: cfg.OIDC.PostLogoutRedirectURI,
		IDTokenHint:           cfg.OIDC.LogoutIDTokenHint,
		Logger:                g.log,
	})
	if err != nil {
		return nil, err
	}
	if g.proxy, err = g.newProxy(publicURL, o.transport); err != nil {
		return nil, err
	}
	if cfg.Frontend.Upstream != "" || cfg.Frontend.StaticDir != "" {
		fo := frontend.Options{StaticDir: cfg.Frontend.StaticDir, Headers: cfg.Frontend.Headers, Transport: o.transport, CookiePrefix: cfg.Session.CookieName, Logger: g.log}
		if cfg.Frontend.Upstream != "" {
			if fo.Upstream, err = url.Parse(cfg.Frontend.Upstream); err != nil {
				return nil, fmt.Errorf("gatehouse: frontend.upstream: %w", err)
			}
		}
		if g.frontend, err = frontend.New(fo); err != nil {
			return nil, err
		}
	}
	g.buildEndpoints()
	built = true
	return g, nil
}

// providerClient wraps c's transport with the layers in use for provider
// calls: metrics, DPoP proofs for sessions that have a key, tracing.
func providerClient(c *http.Client, m *metrics.Metrics, o *options, withDPoP bool) *http.Client {
	out := *c
	rt := out.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	rt = metrics.InstrumentRoundTripper(m, "provider", rt)
	if withDPoP {
		rt = dpop.NewTransport(rt, o.now)
	}
	out.Transport = o.tracing.Transport("provider", rt)
	return &out
}

func (g *Gateway) newProxy(publicURL string, transport http.RoundTripper) (*proxy.Proxy, error) {
	routes := make([]proxy.Route, 0, len(g.cfg.Routes))
	for _, r := range g.cfg.Routes {
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
		})
	}
	pub, err := url.Parse(publicURL)
	if err != nil {
		return nil, fmt.Errorf("gatehouse: server.public_url: %w", err)
	}
	return proxy.New(routes, proxy.Options{
		Transport:      transport,
		TrustedProxies: g.trusted,
		PublicURL:      pub,
		CookiePrefix:   g.cfg.Session.CookieName,
		Logger:         g.log,
		OnLeak:         g.metrics.LeakBlocked,
	})
}

// keyRing builds the configured key ring, or an ephemeral one for the
// memory store.
func keyRing(cfg *Config) (*seal.Ring, error) {
	if len(cfg.Session.Keys) == 0 {
		if cfg.Session.Store != config.StoreMemory {
			return nil, errors.New("gatehouse: session.keys is required for a persistent session store")
		}
		return seal.Ephemeral(), nil
	}
	keys := make([]seal.Key, 0, len(cfg.Session.Keys))
	for _, k := range cfg.Session.Keys {
		key, err := seal.ParseKey(k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return seal.NewRing(keys...)
}

// openStore opens the configured store.
func openStore(cfg *Config, now func() time.Time) (store.Store, error) {
	switch cfg.Session.Store {
	case config.StoreMemory:
		return memstore.New(memstore.Options{Now: now}), nil
	case config.StoreBolt:
		s, err := boltstore.Open(cfg.Session.BoltPath, boltstore.Options{Now: now})
		if err != nil {
			return nil, fmt.Errorf("gatehouse: %w", err)
		}
		return s, nil
	case config.StoreRedis:
		client, err := redisconf.Client(cfg, 0)
		if err != nil {
			return nil, err
		}
		s := redisstore.New(client, redisstore.Options{Prefix: cfg.Redis.KeyPrefix, Now: now, LocalCacheTTL: cfg.Redis.LocalCacheTTL})
		return &ownedRedis{Store: s, client: client}, nil
	}
	return nil, fmt.Errorf("gatehouse: unknown session store %q", cfg.Session.Store)
}

// ownedRedis is a Redis store whose client the Gateway created and closes.
type ownedRedis struct {
	*redisstore.Store
	client redis.UniversalClient
}

func (o *ownedRedis) Close() error {
	o.Store.Close()
	return o.client.Close()
}

// AdminHandler returns the operator API (sessions by subject or sid) and
// the health endpoints, for a separate admin listener. With token empty
// the session API answers loopback callers only.
func (g *Gateway) AdminHandler(token string) (http.Handler, error) {
	api, err := admin.NewHandler(admin.HandlerOptions{
		Service: admin.NewService(g.sessions),
		Issuer: func(ctx context.Context) (string, error) {
			p, err := g.provider.Get(ctx)
			if err != nil {
				return "", err
			}
			return p.Issuer(), nil
		},
		Token:  token,
		Logger: g.log,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(admin.Path, api)
	mux.HandleFunc("/healthz", g.Healthz)
	mux.HandleFunc("/readyz", g.Readyz)
	return mux, nil
}

// Ready reports whether the gateway can serve logins and sessions: the
// provider's discovery document is loaded and the session store answers.
func (g *Gateway) Ready(ctx context.Context) error {
	if _, err := g.provider.Get(ctx); err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	if err := g.store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Healthz answers 200 while the process serves (liveness).
func (g *Gateway) Healthz(w http.ResponseWriter, r *http.Request) {
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz answers 200 when Ready, else 503 naming the failing part
// (readiness). The detail goes to the log only.
func (g *Gateway) Readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		g.log.WarnContext(ctx, "not ready", "err", err)
		part := "store"
		if g.provider.Loaded() == nil {
			part = "provider"
		}
		httpx.JSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "failing": part})
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Close releases the Gateway's store. In-flight requests should be drained
// first (http.Server.Shutdown).
func (g *Gateway) Close() error {
	return g.store.Close()
}

// ServeHTTP routes a request: the session endpoints under the BFF prefix,
// then the API routes, then the frontend.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = g.withRequestID(w, r)
	if name, h := g.route(r); h != nil {
		g.serve(name, w, r, h.ServeHTTP)
		return
	}
	if m, ok := g.proxy.Match(r); ok {
		api := g.apis[m.Route]
		g.serve(api.name, w, r, func(w http.ResponseWriter, r *http.Request) { g.serveAPI(w, r, api, m) })
		return
	}
	if g.frontend != nil {
		g.serve("frontend", w, r, g.frontend.ServeHTTP)
		return
	}
	g.serve("not_found", w, r, notFound)
}

// serve runs h for r under a route name, which names the request in
// traces, the access log and metrics.
func (g *Gateway) serve(name string, w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	tracing.SetRoute(r, name)
	httpx.SetRoute(r.Context(), name)
	g.metrics.Serve(name, w, r, h)
}

// route picks the gateway's own handler for r and a low-cardinality name
// for it, or nil when r is for an API route or the frontend.
func (g *Gateway) route(r *http.Request) (string, http.Handler) {
	switch path := r.URL.Path; path {
	case g.callbackPath:
		return "bff_callback", g.endpoints["callback"]
	case g.cfg.Server.HealthPath:
		return "healthz", g.endpoints["healthz"]
	case g.cfg.Server.ReadyPath:
		return "readyz", g.endpoints["readyz"]
	}
	rest, ok := strings.CutPrefix(r.URL.Path, g.prefix+"/")
	if !ok {
		return "", nil
	}
	if h, ok := g.endpoints[rest]; ok {
		return "bff_" + rest, h
	}
	if strings.HasPrefix(rest, "sessions/") {
		return "bff_sessions", g.endpoints["sessions"]
	}
	return "not_found", http.HandlerFunc(notFound)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	httpx.JSONError(w, r, http.StatusNotFound, "not_found", "")
}

// buildEndpoints prepares the handler of each session endpoint, with the
// body limit and, for the endpoints anyone can call without a session, the
// per-client rate limit.
func (g *Gateway) buildEndpoints() {
	limitBody := func(h http.Handler) http.Handler {
		return server.WriteDeadline(g.cfg.Server.WriteTimeout, server.LimitBody(g.cfg.Server.MaxBodyBytes, h))
	}
	limited := func(name string, h http.Handler) http.Handler {
		if g.cfg.Server.RateLimit < 0 {
			return h
		}
		l := ratelimit.New(ratelimit.Options{
			Rate:      rate.Limit(float64(g.cfg.Server.RateLimit) / 60),
			Burst:     g.cfg.Server.RateLimit,
			OnLimited: func(*http.Request) { g.metrics.RateLimited(name) },
		})
		return l.Handler(g.clientIP, h)
	}
	g.endpoints = map[string]http.Handler{
		"login":    limited("bff_login", limitBody(http.HandlerFunc(g.login.Login))),
		"callback": limited("bff_callback", limitBody(http.HandlerFunc(g.login.Callback))),
		// Server to server: the signed logout token is the only
		// credential, so no CSRF check and no session.
		"backchannel": limited("bff_backchannel", limitBody(g.backchannel)),
		"user":        limitBody(http.HandlerFunc(g.bff.User)),
		"logout":      limitBody(http.HandlerFunc(g.bff.Logout)),
		"sessions":    limitBody(http.HandlerFunc(g.bff.Sessions)),
		"healthz":     http.HandlerFunc(g.Healthz),
		"readyz":      http.HandlerFunc(g.Readyz),
	}
	g.apis = make(map[*proxy.Route]*apiRoute)
	for _, route := range g.proxy.Routes() {
		for _, rc := range g.cfg.Routes {
			if rc.Prefix == route.Prefix {
				g.apis[route] = &apiRoute{
					name: "api:" + rc.Prefix,
					need: tokens.Need{Mode: rc.Token, Audience: rc.Audience, Resource: rc.Resource, Exchange: rc.TokenExchange},
				}
			}
		}
	}
}

// clientIP is the address of the browser: the peer, or, when the peer is a
// trusted proxy, the right-most X-Forwarded-For hop that is not one.
func (g *Gateway) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !g.trustedAddr(ip) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		if hop = hop.Unmap(); !g.trustedAddr(hop) {
			return hop
		}
	}
	return ip
}

func (g *Gateway) trustedAddr(ip netip.Addr) bool {
	for _, p := range g.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// withRequestID gives the request an id: the inbound X-Request-Id when a
// trusted proxy sent a well-formed one, else a new random id.
func (g *Gateway) withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 128 || !g.fromTrustedProxy(r) || strings.ContainsFunc(id, func(c rune) bool { return c <= ' ' || c > '~' }) {
		id = httpx.NewRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	return r.WithContext(httpx.WithRequestID(r.Context(), id))
}

func (g *Gateway) fromTrustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && g.trustedAddr(ap.Addr().Unmap())
}
