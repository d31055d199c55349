package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// Middleware wraps next so that each request is counted in
// gatehouse_http_requests_total{route,method,code}, timed in
// gatehouse_http_request_duration_seconds{route} and tracked in
// gatehouse_http_requests_in_flight{route}. route names the request's
// route with a value from a small fixed set ("bff_login", "api:/api/",
// "frontend"); it is called once per request, before next. Methods other
// than the standard ones are counted as "OTHER". A connection hijacked for
// an upgrade counts with code 101 unless the handler wrote another status,
// and its lifetime is not observed as a request duration.
//
// The ResponseWriter given to next implements http.Flusher, http.Hijacker
// and io.ReaderFrom, and has an Unwrap method, so streaming responses and
// WebSocket upgrades work through it. A nil m returns next.
func (m *Metrics) Middleware(route func(*http.Request) string, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Serve(route(r), w, r, next.ServeHTTP)
	})
}

// Serve runs serve for r and records it as Middleware does, under route.
// A nil m just runs serve.
func (m *Metrics) Serve(route string, w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request)) {
	if m == nil {
		serve(w, r)
		return
	}
	start := time.Now()
	inFlight := m.inFlight.WithLabelValues(route)
	inFlight.Inc()
	defer inFlight.Dec()
	sw := httpx.RecorderFor(w)
	serve(sw, r)
	code := sw.StatusCode()
	m.requests.WithLabelValues(route, method(r.Method), statusLabel(code)).Inc()
	if code != http.StatusSwitchingProtocols {
		m.requestDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}

// statusLabel is the code label, without an allocation for the common
// codes.
func statusLabel(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusNoContent:
		return "204"
	case http.StatusSwitchingProtocols:
		return "101"
	case http.StatusFound:
		return "302"
	case http.StatusNotModified:
		return "304"
	case http.StatusBadRequest:
		return "400"
	case http.StatusUnauthorized:
		return "401"
	case http.StatusForbidden:
		return "403"
	case http.StatusNotFound:
		return "404"
	case http.StatusBadGateway:
		return "502"
	case http.StatusServiceUnavailable:
		return "503"
	}
	return strconv.Itoa(code)
}

// method bounds the method label: request methods are client-chosen.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

type opKey struct{}

// WithOp returns a context that makes InstrumentRoundTripper record a
// request made with it under op instead of the transport's default
// operation, so one HTTP client can serve several provider endpoints
// ("discovery", "jwks", "token", "userinfo", "revoke") and still be told
// apart.
func WithOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

// InstrumentRoundTripper returns a RoundTripper that records each round
// trip through rt with m.ProviderCall: under the operation set on the
// request context with WithOp, or else op; with its time to response
// headers; and as a failure when the transport fails or the provider
// answers with a 5xx status. A nil rt means http.DefaultTransport; a nil m
// returns rt unchanged.
func InstrumentRoundTripper(m *Metrics, op string, rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if m == nil {
		return rt
	}
	return &roundTripper{m: m, op: op, next: rt}
}

type roundTripper struct {
	m    *Metrics
	op   string
	next http.RoundTripper
}

// errServer marks a 5xx answer as a failed provider call.
type errServer int

func (e errServer) Error() string { return fmt.Sprintf("metrics: provider answered %d", int(e)) }

func (t *roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	failure := err
	if err == nil && resp.StatusCode >= 500 {
		failure = errServer(resp.StatusCode)
	}
	op, ok := r.Context().Value(opKey{}).(string)
	if !ok {
		op = t.op
	}
	t.m.ProviderCall(op, time.Since(start), failure)
	return resp, err
}
