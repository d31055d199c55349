package gatehouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/admin"
	"github.com/gatehouse-bff/gatehouse/backchannel"
	"github.com/gatehouse-bff/gatehouse/bff"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/csrf"
	"github.com/gatehouse-bff/gatehouse/frontend"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/login"
	"github.com/gatehouse-bff/gatehouse/provider"
	"github.com/gatehouse-bff/gatehouse/proxy"
	"github.com/gatehouse-bff/gatehouse/seal"
	"github.com/gatehouse-bff/gatehouse/session"
	"github.com/gatehouse-bff/gatehouse/store/boltstore"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
	"github.com/gatehouse-bff/gatehouse/tokens"
	"github.com/redis/go-redis/v9"
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
	store      session.Store
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPClient sets the client for calls to the OpenID provider.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithTransport sets the transport for calls to upstream APIs.
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

// WithClock sets the clock for sessions and token checks.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithStore uses s instead of the store the configuration names. The
// Gateway closes it on Close.
func WithStore(s session.Store) Option { return func(o *options) { o.store = s } }

// Gateway is the BFF: an http.Handler serving the session endpoints, the
// API routes and the frontend. It is safe for concurrent use.
type Gateway struct {
	cfg      *Config
	log      *slog.Logger
	store    session.Store
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
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.httpClient == nil {
		o.httpClient = &http.Client{Timeout: cfg.OIDC.Timeout}
	}
	g := &Gateway{cfg: cfg, log: o.logger, prefix: cfg.BFF.Prefix, callbackPath: cfg.OIDC.CallbackPath}
	for _, tp := range cfg.Server.TrustedProxies {
		p, _ := config.ParsePrefix(tp) // checked by Validate
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

	var locker tokens.Locker
	g.store = o.store
	if g.store == nil {
		if g.store, locker, err = openStore(cfg, o.now); err != nil {
			return nil, err
		}
	}
	once, ok := g.store.(session.OnceStore)
	if !ok {
		g.store.Close()
		return nil, errors.New("gatehouse: the session store must also record one-time values (session.OnceStore)")
	}
	g.sessions, err = session.NewManager(session.Options{
		Store:           g.store,
		Ring:            sessionRing,
		CookieName:      cfg.Session.CookieName,
		SameSite:        cfg.Session.SameSiteMode(),
		IdleTimeout:     cfg.Session.IdleTimeout,
		AbsoluteTimeout: cfg.Session.AbsoluteTimeout,
		Now:             o.now,
		OnEnd: func(ctx context.Context, s *session.Session, reason string) {
			g.log.InfoContext(ctx, "session ended", "request_id", httpx.RequestID(ctx), "session", s.Handle, "reason", reason)
		},
	})
	if err != nil {
		g.store.Close()
		return nil, err
	}

	publicURL := strings.TrimSuffix(cfg.Server.PublicURL, "/")
	g.provider = provider.NewSource(provider.Options{
		Issuer:       cfg.OIDC.Issuer,
		ClientID:     cfg.OIDC.ClientID,
		ClientSecret: cfg.OIDC.ClientSecret,
		AuthMethod:   cfg.OIDC.AuthMethod,
		Scopes:       cfg.OIDC.Scopes,
		RedirectURL:  publicURL + cfg.OIDC.CallbackPath,
		SigningAlgs:  cfg.OIDC.SigningAlgs,
		HTTPClient:   o.httpClient,
		Now:          o.now,
	}, 0)
	g.tokens = tokens.New(tokens.Options{
		Provider: g.provider,
		Sessions: g.sessions,
		Skew:     cfg.OIDC.RefreshSkew,
		Locker:   locker,
		Now:      o.now,
		Logger:   g.log,
	})
	g.login, err = login.New(login.Options{
		Provider:   g.provider,
		Sessions:   g.sessions,
		Once:       once,
		Ring:       txRing,
		UserInfo:   cfg.OIDC.UserInfo,
		AuthParams: cfg.OIDC.AuthParams,
		Logger:     g.log,
		Now:        o.now,
	})
	if err != nil {
		g.store.Close()
		return nil, err
	}
	g.backchannel, err = backchannel.New(backchannel.Options{
		Provider:    g.provider,
		Store:       g.store,
		Once:        once,
		AllSessions: cfg.BFF.BackchannelAllSessions,
		Now:         o.now,
		Logger:      g.log,
		OnEnd: func(ctx context.Context, keys []string, reason string) {
			g.log.InfoContext(ctx, "sessions ended", "request_id", httpx.RequestID(ctx), "count", len(keys), "reason", reason)
		},
	})
	if err != nil {
		g.store.Close()
		return nil, err
	}
	g.csrf, err = csrf.New(csrf.Options{
		HeaderName:  cfg.BFF.CSRFHeader,
		HeaderValue: cfg.BFF.CSRFValue,
		Origin:      publicURL,
	})
	if err != nil {
		g.store.Close()
		return nil, err
	}
	g.bff, err = bff.New(bff.Options{
		Prefix:                cfg.BFF.Prefix,
		Provider:              g.provider,
		Sessions:              g.sessions,
		Tokens:                g.tokens,
		CSRF:                  g.csrf.Check,
		UserClaims:            cfg.BFF.UserClaims,
		RevokeOnLogout:        *cfg.OIDC.RevokeOnLogout,
		PostLogoutRedirectURI: cfg.OIDC.PostLogoutRedirectURI,
		IDTokenHint:           cfg.OIDC.LogoutIDTokenHint,
		Logger:                g.log,
	})
	if err != nil {
		g.store.Close()
		return nil, err
	}
	if g.proxy, err = g.newProxy(publicURL, o.transport); err != nil {
		g.store.Close()
		return nil, err
	}
	if cfg.Frontend.Upstream != "" || cfg.Frontend.StaticDir != "" {
		fo := frontend.Options{StaticDir: cfg.Frontend.StaticDir, Headers: cfg.Frontend.Headers, Transport: o.transport, CookiePrefix: cfg.Session.CookieName, Logger: g.log}
		if cfg.Frontend.Upstream != "" {
			fo.Upstream, _ = url.Parse(cfg.Frontend.Upstream) // checked by Validate
		}
		if g.frontend, err = frontend.New(fo); err != nil {
			g.store.Close()
			return nil, err
		}
	}
	return g, nil
}

func (g *Gateway) newProxy(publicURL string, transport http.RoundTripper) (*proxy.Proxy, error) {
	routes := make([]proxy.Route, 0, len(g.cfg.Routes))
	for _, r := range g.cfg.Routes {
		up, _ := url.Parse(r.Upstream) // checked by Validate
		routes = append(routes, proxy.Route{
			Prefix:        r.Prefix,
			Upstream:      up,
			Token:         proxy.TokenMode(r.Token),
			StripPrefix:   r.StripPrefix,
			Timeout:       r.Timeout,
			Methods:       r.Methods,
			Audience:      r.Audience,
			Resource:      r.Resource,
			TokenExchange: r.TokenExchange,
		})
	}
	pub, _ := url.Parse(publicURL)
	return proxy.New(routes, proxy.Options{
		Transport:      transport,
		TrustedProxies: g.trusted,
		PublicURL:      pub,
		CookiePrefix:   g.cfg.Session.CookieName,
		Logger:         g.log,
	})
}

// keyRing builds the configured key ring, or an ephemeral one for the
// memory store.
func keyRing(cfg *Config) (*seal.Ring, error) {
	if len(cfg.Session.Keys) == 0 {
		if cfg.Session.Store != "memory" {
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

// openStore opens the configured store, and for a shared store the lock
// that serialises refreshes across replicas.
func openStore(cfg *Config, now func() time.Time) (session.Store, tokens.Locker, error) {
	switch cfg.Session.Store {
	case "memory":
		return memstore.New(memstore.Options{Now: now}), nil, nil
	case "bolt":
		s, err := boltstore.Open(cfg.Session.BoltPath, boltstore.Options{Now: now})
		if err != nil {
			return nil, nil, fmt.Errorf("gatehouse: %w", err)
		}
		return s, nil, nil
	case "redis":
		client, err := redisClient(cfg)
		if err != nil {
			return nil, nil, err
		}
		s := redisstore.New(client, redisstore.Options{Prefix: cfg.Redis.KeyPrefix, Now: now})
		return &ownedRedis{Store: s, client: client}, redisstore.NewLocker(client, cfg.Redis.KeyPrefix), nil
	}
	return nil, nil, fmt.Errorf("gatehouse: unknown session store %q", cfg.Session.Store)
}

// redisClient builds the Redis client from session.redis_url or the redis
// block, with bounded timeouts and pool so that a Redis outage turns into
// prompt 503s rather than piled-up goroutines.
func redisClient(cfg *Config) (redis.UniversalClient, error) {
	rc := cfg.Redis
	if cfg.Session.RedisURL != "" {
		o, err := redis.ParseURL(cfg.Session.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("gatehouse: session.redis_url: %w", err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = rc.Timeout, rc.Timeout, rc.Timeout
		o.PoolTimeout = rc.Timeout
		if rc.PoolSize > 0 {
			o.PoolSize = rc.PoolSize
		}
		return redis.NewClient(o), nil
	}
	o := &redis.UniversalOptions{
		Addrs:         rc.Addrs,
		MasterName:    rc.MasterName,
		IsClusterMode: rc.Cluster,
		Username:      rc.Username,
		Password:      rc.Password,
		DB:            rc.DB,
		DialTimeout:   rc.Timeout,
		ReadTimeout:   rc.Timeout,
		WriteTimeout:  rc.Timeout,
		PoolTimeout:   rc.Timeout,
		PoolSize:      rc.PoolSize,
	}
	if rc.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(o), nil
}

// ownedRedis is a Redis store whose client the Gateway created and closes.
type ownedRedis struct {
	*redisstore.Store
	client redis.UniversalClient
}

func (o *ownedRedis) Close() error { return o.client.Close() }

// Sessions returns the session administration service, for embedders that
// end a user's sessions from their own code (on account deletion, say).
func (g *Gateway) Sessions() *admin.Service { return admin.NewService(g.sessions) }

// AdminHandler returns the operator API (sessions by subject or sid) and
// the health endpoints, for a separate admin listener. With token empty
// the session API answers loopback callers only.
func (g *Gateway) AdminHandler(token string) (http.Handler, error) {
	api, err := admin.NewHandler(admin.HandlerOptions{
		Service: g.Sessions(),
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
	if p, ok := g.store.(session.Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return fmt.Errorf("store: %w", err)
		}
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
		g.log.WarnContext(ctx, "not ready", "request_id", httpx.RequestID(ctx), "err", err)
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
	path := r.URL.Path
	if path == g.callbackPath {
		g.login.Callback(w, r)
		return
	}
	if rest, ok := strings.CutPrefix(path, g.prefix+"/"); ok {
		switch rest {
		case "login":
			g.login.Login(w, r)
		case "user":
			g.bff.User(w, r)
		case "logout":
			g.bff.Logout(w, r)
		case "backchannel":
			// Server to server: the signed logout token is the only
			// credential, so no CSRF check and no session.
			g.backchannel.ServeHTTP(w, r)
		case "sessions":
			g.bff.Sessions(w, r)
		case "healthz":
			g.Healthz(w, r)
		case "readyz":
			g.Readyz(w, r)
		default:
			if strings.HasPrefix(rest, "sessions/") {
				g.bff.Sessions(w, r)
				return
			}
			httpx.JSONError(w, r, http.StatusNotFound, "not_found", "")
		}
		return
	}
	if route, ok := g.proxy.Match(r); ok {
		g.serveAPI(w, r, route)
		return
	}
	if g.frontend != nil {
		g.frontend.ServeHTTP(w, r)
		return
	}
	httpx.JSONError(w, r, http.StatusNotFound, "not_found", "")
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
	if err != nil {
		return false
	}
	for _, p := range g.trusted {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}
