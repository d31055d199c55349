package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics records Gatehouse's metrics. Its methods are safe for concurrent
// use, and are no-ops on a nil *Metrics.
//
// Every string argument becomes a label value and must come from a small,
// fixed set chosen by the caller (for example "ok", "failed", "ended"),
// never from request data.
type Metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	inFlight        *prometheus.GaugeVec
	sessionsStarted prometheus.Counter
	sessionsEnded   *prometheus.CounterVec
	refreshes       *prometheus.CounterVec
	providerCalls   *prometheus.HistogramVec
	providerErrors  *prometheus.CounterVec
	storeCalls      *prometheus.HistogramVec
	storeErrors     *prometheus.CounterVec
	csrfRejected    *prometheus.CounterVec
	leaksBlocked    prometheus.Counter
	rateLimited     *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	policyDenied    *prometheus.CounterVec
	streamsOpen     prometheus.Gauge
	streamsClosed   *prometheus.CounterVec
}

// Option configures New.
type Option func(*options)

type options struct {
	activeSessions func() float64
}

// WithActiveSessions exports gatehouse_sessions_active, read from count
// at each scrape (for example a store's record count). count must be safe
// for concurrent use and fast. Without this option the gauge is not
// exported: started and ended counters cannot give it, because sessions
// also expire unobserved and other replicas share the store.
func WithActiveSessions(count func() float64) Option {
	return func(o *options) { o.activeSessions = count }
}

// New creates the metrics and registers them with reg. A nil reg registers
// nothing (the metrics are recorded but not exported). If a metric cannot
// be registered (typically because reg already has one of that name), New
// unregisters the ones it registered and returns the error.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests served, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route. Upgraded connections (WebSockets) are not observed.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_http_requests_in_flight",
			Help: "HTTP requests being served, including open upgraded connections, by route.",
		}, []string{"route"}),
		sessionsStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_sessions_started_total",
			Help: "Sessions started by a completed login.",
		}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_sessions_ended_total",
			Help: "Sessions ended by the gateway, by reason.",
		}, []string{"reason"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_token_refresh_total",
			Help: "Access token refreshes, by outcome.",
		}, []string{"outcome"}),
		providerCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_provider_request_duration_seconds",
			Help:    "Time of calls to the identity provider, by operation.",
			Buckets: prometheus.DefBuckets,
		}, []string{"op"}),
		providerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_provider_errors_total",
			Help: "Failed calls to the identity provider, by operation.",
		}, []string{"op"}),
		storeCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_store_operation_duration_seconds",
			Help:    "Time of session store operations, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_store_errors_total",
			Help: "Failed session store operations (not counting records not found), by operation.",
		}, []string{"op"}),
		csrfRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_csrf_rejected_total",
			Help: "Requests refused as cross-site request forgery, by reason.",
		}, []string{"reason"}),
		leaksBlocked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_token_leaks_blocked_total",
			Help: "Responses blocked because they would have carried a token to the browser.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_rate_limited_total",
			Help: "Requests refused by a rate limit, by endpoint.",
		}, []string{"endpoint"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_config_reloads_total",
			Help: "Configuration reloads, by result: ok, or refused (the running configuration kept serving).",
		}, []string{"result"}),
		policyDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_policy_denied_total",
			Help: "API requests refused by a route's require conditions, by route and reason.",
		}, []string{"route", "reason"}),
		streamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_streams_open",
			Help: "Upgraded (WebSocket) and streaming responses open for a session on this replica.",
		}),
		streamsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_streams_closed_total",
			Help: "Streams closed, by reason: the reason their session ended, or done when the stream ended by itself.",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{
		m.requests, m.requestDuration, m.inFlight, m.sessionsStarted, m.sessionsEnded, m.refreshes,
		m.providerCalls, m.providerErrors, m.storeCalls, m.storeErrors, m.csrfRejected, m.leaksBlocked, m.rateLimited, m.reloads,
		m.policyDenied,
		m.streamsOpen, m.streamsClosed,
	}
	if o.activeSessions != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_sessions_active",
			Help: "Sessions in the session store.",
		}, o.activeSessions))
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Handler serves the metrics gathered from g in the Prometheus exposition
// format (OpenMetrics when the scraper asks for it).
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// SessionStarted counts a session started by a completed login.
func (m *Metrics) SessionStarted() {
	if m == nil {
		return
	}
	m.sessionsStarted.Inc()
}

// SessionEnded counts a session ended for reason (such as "logout",
// "idle", "absolute", "backchannel", "refresh_failed").
func (m *Metrics) SessionEnded(reason string) {
	if m == nil {
		return
	}
	m.sessionsEnded.WithLabelValues(reason).Inc()
}

// StreamOpened counts a stream opened for a session.
func (m *Metrics) StreamOpened() {
	if m == nil {
		return
	}
	m.streamsOpen.Inc()
}

// StreamClosed counts a stream closed for reason: its session's end reason
// ("logout", "idle", ...), "ended" when a re-check found the session gone,
// or "done" when the stream ended by itself.
func (m *Metrics) StreamClosed(reason string) {
	if m == nil {
		return
	}
	m.streamsOpen.Dec()
	m.streamsClosed.WithLabelValues(reason).Inc()
}

// Refresh counts an access token refresh with its outcome (such as "ok",
// "failed", "ended").
func (m *Metrics) Refresh(outcome string) {
	if m == nil {
		return
	}
	m.refreshes.WithLabelValues(outcome).Inc()
}

// ProviderCall records a call to the identity provider: operation op (such
// as "discovery", "jwks", "token", "userinfo", "revoke"), its duration d,
// and whether it failed (err != nil).
func (m *Metrics) ProviderCall(op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.providerCalls.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.providerErrors.WithLabelValues(op).Inc()
	}
}

// StoreCall records a session store operation op, its duration d, and
// whether it failed. store.ErrNotFound is an answer, not a failure, and
// is not counted as an error.
func (m *Metrics) StoreCall(op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.storeCalls.WithLabelValues(op).Observe(d.Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// CSRFRejected counts a request refused as cross-site request forgery for
// reason (such as "header", "origin", "fetch_site").
func (m *Metrics) CSRFRejected(reason string) {
	if m == nil {
		return
	}
	m.csrfRejected.WithLabelValues(reason).Inc()
}

// LeakBlocked counts a response blocked because it would have carried a
// token to the browser.
func (m *Metrics) LeakBlocked() {
	if m == nil {
		return
	}
	m.leaksBlocked.Inc()
}

// RateLimited counts a request refused by the rate limit of endpoint (such
// as "bff_login", "backchannel").
func (m *Metrics) RateLimited(endpoint string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(endpoint).Inc()
}

// ConfigReload counts a configuration reload by result ("ok", "refused").
func (m *Metrics) ConfigReload(result string) {
	if m == nil {
		return
	}
	m.reloads.WithLabelValues(result).Inc()
}

// PolicyDenied counts an API request refused by route's require conditions
// for reason ("login_required", "claims", "scopes", "acr", "max_age").
func (m *Metrics) PolicyDenied(route, reason string) {
	if m == nil {
		return
	}
	m.policyDenied.WithLabelValues(route, reason).Inc()
}
