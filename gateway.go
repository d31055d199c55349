package gatehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/admin"
	"github.com/gatehouse-bff/gatehouse/internal/dpop"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/logging"
	"github.com/gatehouse-bff/gatehouse/internal/metrics"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/redisconf"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/streams"
	"github.com/gatehouse-bff/gatehouse/internal/tokens"
	"github.com/gatehouse-bff/gatehouse/internal/tracing"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/boltstore"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
	"github.com/gatehouse-bff/gatehouse/store/pgstore"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
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
// API routes and the frontend of each configured app. It is safe for
// concurrent use, and Reload changes its apps while it serves.
type Gateway struct {
	sh *shared
	// apps is the configuration being served; a request keeps the set it
	// started with.
	apps     atomic.Pointer[appSet]
	reloadMu sync.Mutex
}

// shared is what every app of a gateway uses, fixed for its lifetime.
type shared struct {
	cfg         *Config // as at New: the keys Reload cannot change
	log         *slog.Logger
	metrics     *metrics.Metrics
	tracing     *tracing.Tracing
	now         func() time.Time
	store       store.Store
	locker      tokens.Locker
	sessionRing *seal.Ring
	txRing      *seal.Ring
	trusted     []netip.Prefix
	transport   http.RoundTripper
	httpClient  *http.Client
	// streams closes what is held open for a session when it ends, in
	// whichever app.
	streams *streams.Registry
	// toucher writes every app's sliding deadlines off the request path.
	toucher *session.Toucher
}

// New validates cfg and builds a Gateway. It does not contact the
// providers: discovery happens on first use and is retried until it works.
func New(cfg *Config, opts ...Option) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gatehouse: invalid configuration: %w", err)
	}
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	sh := &shared{cfg: cfg, log: logging.ForGatehouse(o.logger), tracing: o.tracing, now: o.now}
	sh.toucher = session.NewToucher(sh.log)
	if sh.now == nil {
		sh.now = time.Now
	}
	if o.registerer != nil {
		var err error
		if sh.metrics, err = metrics.New(o.registerer); err != nil {
			return nil, fmt.Errorf("gatehouse: %w", err)
		}
	}
	sh.httpClient = o.httpClient
	if sh.httpClient == nil {
		sh.httpClient = &http.Client{Timeout: cfg.OIDC.Timeout}
	}
	sh.transport = o.transport
	if sh.tracing.Enabled() {
		if sh.transport == nil {
			sh.transport = proxy.NewTransport()
		}
		sh.transport = sh.tracing.Transport("upstream", sh.transport)
	}
	for _, tp := range cfg.Server.TrustedProxies {
		p, err := config.ParsePrefix(tp)
		if err != nil {
			return nil, fmt.Errorf("gatehouse: server.trusted_proxies: %w", err)
		}
		sh.trusted = append(sh.trusted, p)
	}
	ring, err := keyRing(cfg)
	if err != nil {
		return nil, err
	}
	if sh.sessionRing, err = ring.Derive("session"); err != nil {
		return nil, err
	}
	if sh.txRing, err = ring.Derive("login transaction"); err != nil {
		return nil, err
	}
	st := o.store
	if st == nil {
		if st, err = openStore(cfg, sh.now); err != nil {
			return nil, err
		}
	}
	// A store shared between processes serialises refreshes across them;
	// otherwise one lock in this process serialises them across the apps
	// a reload replaces.
	if l, ok := st.(store.Locker); ok {
		sh.locker = l
	} else {
		sh.locker = tokens.NewLocalLocker()
	}
	sh.store = metrics.InstrumentStore(sh.metrics, sh.tracing.Store(st))
	notifier, err := streamNotifier(st, cfg)
	if err != nil {
		sh.store.Close()
		return nil, err
	}
	sh.streams, err = streams.New(streams.Options{
		Records:  sh.store,
		Notifier: notifier,
		Now:      sh.now,
		Logger:   sh.log,
		OnOpen:   sh.metrics.StreamOpened,
		OnClose:  sh.metrics.StreamClosed,
	})
	if err != nil {
		sh.store.Close()
		return nil, err
	}
	g := &Gateway{sh: sh}
	set, err := g.build(cfg, nil)
	if err != nil {
		sh.streams.Close()
		sh.store.Close()
		return nil, err
	}
	g.apps.Store(set)
	return g, nil
}

// providerClient returns the client for cfg's provider calls: the
// gateway's client with the layers in use: metrics, DPoP proofs for
// sessions that have a key, tracing.
func (g *Gateway) providerClient(cfg *Config) *http.Client {
	out := *g.sh.httpClient
	rt := out.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	rt = metrics.InstrumentRoundTripper(g.sh.metrics, "provider", rt)
	if cfg.OIDC.DPoP != config.DPoPOff {
		rt = dpop.NewTransport(rt, g.sh.now)
	}
	out.Transport = g.sh.tracing.Transport("provider", rt)
	return &out
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
	case config.StorePostgres:
		// Open creates or migrates the tables; its errors never quote the DSN.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := pgstore.Open(ctx, cfg.Postgres.DSN, pgstore.Options{Now: now})
		if err != nil {
			return nil, fmt.Errorf("gatehouse: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("gatehouse: unknown session store %q", cfg.Session.Store)
}

// streamNotifier returns the channel that carries ended sessions to the
// other replicas sharing st: Redis pub/sub for the Redis store the gateway
// opened, LISTEN/NOTIFY for PostgreSQL, none for a store of one process.
func streamNotifier(st store.Store, cfg *Config) (streams.Notifier, error) {
	if o, ok := st.(*ownedRedis); ok {
		return streams.NewRedisNotifier(o.client, cfg.Redis.KeyPrefix), nil
	}
	if cfg.Session.Store == config.StorePostgres && cfg.Postgres.DSN != "" {
		n, err := streams.NewPostgresNotifier(cfg.Postgres.DSN)
		if err != nil {
			return nil, fmt.Errorf("gatehouse: %w", err)
		}
		return n, nil
	}
	return nil, nil
}

// ownedRedis is a Redis store whose client the Gateway created and closes.
type ownedRedis struct {
	store.Store
	client redis.UniversalClient
}

// Lock is the Redis store's cross-process lock.
func (o *ownedRedis) Lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	return o.Store.(store.Locker).Lock(ctx, key, ttl)
}

func (o *ownedRedis) Close() error {
	o.Store.Close()
	return o.client.Close()
}

// AdminHandler returns the operator API (sessions by app, subject or sid)
// and the health endpoints, for a separate admin listener. With token
// empty the session API answers loopback callers only.
func (g *Gateway) AdminHandler(token string) (http.Handler, error) {
	api, err := admin.NewHandler(admin.HandlerOptions{
		Targets: g.adminTargets,
		Token:   token,
		Logger:  g.sh.log,
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

// adminTargets are the apps being served, for the operator API.
func (g *Gateway) adminTargets() []admin.Target {
	set := g.apps.Load()
	out := make([]admin.Target, 0, len(set.all))
	for _, a := range set.all {
		out = append(out, admin.Target{App: a.name, Service: admin.NewService(a.sessions), Issuer: a.issuer})
	}
	return out
}

// Ready reports whether the gateway can serve logins and sessions: every
// app's provider discovery document is loaded and the session store
// answers.
func (g *Gateway) Ready(ctx context.Context) error {
	for _, a := range g.apps.Load().all {
		if _, err := a.provider.Get(ctx); err != nil {
			return fmt.Errorf("provider of app %q: %w", a.name, err)
		}
	}
	if err := g.sh.store.Ping(ctx); err != nil {
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
		g.sh.log.WarnContext(ctx, "not ready", "err", err)
		part := "store"
		for _, a := range g.apps.Load().all {
			if a.provider.Loaded() == nil {
				part = "provider"
			}
		}
		httpx.JSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "failing": part})
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Close releases the Gateway's store. In-flight requests should be drained
// first (http.Server.Shutdown).
func (g *Gateway) Close() error {
	g.sh.streams.Close()
	g.sh.toucher.Wait()
	return g.sh.store.Close()
}

// ServeHTTP serves a request: the health paths, else the app the request
// belongs to (see appSet.pick), else 404.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = g.withRequestID(w, r)
	switch r.URL.Path {
	case g.sh.cfg.Server.HealthPath:
		g.serve("healthz", w, r, g.Healthz)
		return
	case g.sh.cfg.Server.ReadyPath:
		g.serve("readyz", w, r, g.Readyz)
		return
	}
	a := g.apps.Load().pick(r)
	if a == nil {
		g.serve("not_found", w, r, notFound)
		return
	}
	a.serveHTTP(g, w, r)
}

// serve runs h for r under a route name, which names the request in
// traces, the access log and metrics.
func (g *Gateway) serve(name string, w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	tracing.SetRoute(r, name)
	httpx.SetRoute(r.Context(), name)
	g.sh.metrics.Serve(name, w, r, h)
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
	for _, p := range g.sh.trusted {
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
	if httpx.SetRequestID(w, r.Context(), id) {
		return r // the access log's context holds it
	}
	return r.WithContext(httpx.WithRequestID(r.Context(), id))
}

func (g *Gateway) fromTrustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && g.trustedAddr(ap.Addr().Unmap())
}
