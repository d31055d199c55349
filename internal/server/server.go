package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Defaults used for zero Options fields.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 32 << 10
	DefaultReloadInterval    = 10 * time.Second
	DefaultDrain             = 30 * time.Second
)

// Options configures Run. The zero value serves plain HTTP with the
// defaults above.
type Options struct {
	// ReadHeaderTimeout bounds reading a request's headers. Zero means
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Zero means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; a client that
	// sends more gets 431 Request Header Fields Too Large. Zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// TLSCert and TLSKey name PEM files holding the certificate chain and
	// its private key; both or neither. With them Run serves HTTPS and
	// reloads the pair when the files change.
	TLSCert, TLSKey string
	// ReloadInterval is how often, at most, a TLS handshake checks the
	// certificate files for changes. Zero means DefaultReloadInterval.
	ReloadInterval time.Duration
	// Drain bounds the graceful shutdown: how long in-flight requests may
	// take to finish once the context ends. Zero means DefaultDrain.
	Drain time.Duration
	// Logger receives server errors and certificate reloads. Nil discards.
	Logger *slog.Logger
	// Now is the clock the certificate reload interval is measured with.
	// Nil means time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.ReloadInterval <= 0 {
		o.ReloadInterval = DefaultReloadInterval
	}
	if o.Drain <= 0 {
		o.Drain = DefaultDrain
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Run serves h on ln until ctx ends or serving fails. When ctx ends it stops
// accepting connections, closes idle ones and waits up to opts.Drain for
// in-flight requests to finish; it returns nil when they all did, and an
// error after closing the remaining connections when the drain ran out.
// Run closes ln before it returns.
//
// Connections taken over by a handler (WebSocket upgrades) are not tracked
// by the drain; the handler ends them when its request context is done or
// its upstream goes away.
func Run(ctx context.Context, ln net.Listener, h http.Handler, opts Options) error {
	opts.setDefaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	serve := func() error { return srv.Serve(ln) }
	if opts.TLSCert != "" || opts.TLSKey != "" {
		if opts.TLSCert == "" || opts.TLSKey == "" {
			ln.Close()
			return errors.New("server: a TLS certificate and key must be given together")
		}
		cert, err := newCertificate(opts.TLSCert, opts.TLSKey, opts.ReloadInterval, opts.Now, opts.Logger)
		if err != nil {
			ln.Close()
			return err
		}
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: cert.GetCertificate,
		}
		// ServeTLS adds "h2" and "http/1.1" to the ALPN protocols, so
		// HTTP/2 is offered as net/http does by default.
		serve = func() error { return srv.ServeTLS(ln, "", "") }
	}

	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), opts.Drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		<-errc
		return fmt.Errorf("server: drain did not finish in %s: %w", opts.Drain, err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}
