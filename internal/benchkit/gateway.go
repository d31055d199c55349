package benchkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/logging"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/server"
	"github.com/gatehouse-bff/gatehouse/internal/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// GatewayOptions say which Gatehouse to build. The zero value of every
// field but Issuer, Upstream and Store is a sensible benchmark default.
type GatewayOptions struct {
	// Store names an entry of Stores.
	Store string
	Env   StoreEnv
	// Key seals sessions at rest; empty means a fresh key.
	Key string
	// Issuer is the provider's issuer URL; Upstream the API's URL.
	Issuer, Upstream string
	// Idle and Absolute are the session timeouts; zero means 24h and 48h.
	Idle, Absolute time.Duration
	// RateLimit is server.rate_limit; zero keeps the default, -1 turns it off.
	RateLimit int
	// Customize, when set, changes the configuration after the defaults.
	Customize func(*config.Config) `json:"-"`
	// Wrap, when set, wraps the served handler (outermost).
	Wrap func(http.Handler) http.Handler `json:"-"`
}

// Config returns the Gatehouse configuration for o served at publicURL: the
// defaults of `gatehouse serve`, one API route /api/ with the user's token.
func (o GatewayOptions) Config(publicURL string) (*config.Config, error) {
	kind, err := StoreByName(o.Store)
	if err != nil {
		return nil, err
	}
	key := o.Key
	if key == "" {
		if key, err = seal.GenerateKey("bench"); err != nil {
			return nil, err
		}
	}
	cfg := &config.Config{
		Server: config.Server{PublicURL: publicURL, RateLimit: o.RateLimit},
		OIDC:   config.OIDC{Issuer: o.Issuer, ClientID: ClientID, ClientSecret: ClientSecret},
		Session: config.Session{
			IdleTimeout: or(o.Idle, 24*time.Hour), AbsoluteTimeout: or(o.Absolute, 48*time.Hour),
			Keys: []string{key},
		},
		Routes: []config.Route{{Prefix: "/api/", Upstream: o.Upstream}},
	}
	kind.Configure(cfg, o.Env)
	cfg.SetDefaults()
	if o.Customize != nil {
		o.Customize(cfg)
	}
	return cfg, nil
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Gateway is a Gatehouse serving on a loopback listener as `gatehouse
// serve` does: its logger writing text at info level, the access log
// around the handler, metrics recorded in a registry with the Go and
// process collectors, and (disabled) tracing.
type Gateway struct {
	URL        string
	CookieName string
	Config     *config.Config
	GW         *gatehouse.Gateway
	Registry   *prometheus.Registry

	cancel context.CancelFunc
	done   chan error
}

// StartGateway builds the gateway o names and serves it on ln (a fresh
// loopback port when nil). Logs go to logw (nil: /dev/null, which still
// pays for formatting and the write). Extra options go to gatehouse.New.
func StartGateway(o GatewayOptions, ln net.Listener, logw io.Writer, extra ...gatehouse.Option) (*Gateway, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("benchkit: gateway listener: %w", err)
		}
	}
	publicURL := "http://" + ln.Addr().String()
	cfg, err := o.Config(publicURL)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if logw == nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			ln.Close()
			return nil, err
		}
		logw = f
	}
	logger, err := logging.New(cfg.Log.Format, cfg.Log.Level, logw)
	if err != nil {
		ln.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctx, cancel := context.WithCancel(context.Background())
	tr, err := tracing.New(ctx, tracing.Options{ServiceName: cfg.Tracing.ServiceName, SampleRatio: cfg.Tracing.SampleRatio})
	if err != nil {
		cancel()
		ln.Close()
		return nil, err
	}
	opts := append([]gatehouse.Option{gatehouse.WithLogger(logger), gatehouse.WithMetrics(reg)}, extra...)
	gw, err := gatehouse.New(cfg, opts...)
	if err != nil {
		cancel()
		ln.Close()
		return nil, err
	}
	g := &Gateway{URL: publicURL, CookieName: cfg.Session.CookieName, Config: cfg, GW: gw, Registry: reg, cancel: cancel, done: make(chan error, 1)}
	sopts := server.Options{
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		Drain:             2 * time.Second,
		Logger:            logger,
	}
	h := tr.Handler("gatehouse", logging.AccessLog(logger, gw))
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	go func() { g.done <- server.Run(ctx, ln, h, sopts) }()
	return g, nil
}

// Close stops serving and closes the gateway (and its store).
func (g *Gateway) Close() error {
	g.cancel()
	err := <-g.done
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, context.Canceled) {
		err = nil
	}
	return errors.Join(err, g.GW.Close())
}

// quiet silences the provider library, which logs protocol errors to
// slog.Default.
func init() { slog.SetDefault(slog.New(slog.DiscardHandler)) }
