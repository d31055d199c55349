package tracing

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Handler wraps next so that each request runs in a server span named
// "<METHOD> <name>", such as "GET gatehouse"; name should be one of a small
// fixed set (SetRoute refines it per request). The span records the
// method, path, status, peer address and user agent, never the query
// string, other headers or cookies. Unless Options.TrustParent accepts the
// request, inbound trace context only becomes a link of a new trace.
//
// The ResponseWriter given to next keeps http.Flusher, http.Hijacker and
// io.ReaderFrom, so streaming and WebSocket upgrades work through it. A nil
// or disabled t returns next.
func (t *Tracing) Handler(name string, next http.Handler) http.Handler {
	if !t.Enabled() {
		return next
	}
	trust := t.trustParent
	return otelhttp.NewHandler(next, name,
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithPublicEndpointFn(func(r *http.Request) bool { return trust == nil || !trust(r) }),
		otelhttp.WithSpanNameFormatter(func(op string, r *http.Request) string { return method(r.Method) + " " + op }),
	)
}

// SetRoute names the server span of r after the route that serves it, as
// "<METHOD> <route>", and records the route as gatehouse.route; route must
// come from a small fixed set, such as "bff_login" or "api:/api/". Call it
// from inside Handler once the route is known. It does nothing when r has
// no recording span.
func SetRoute(r *http.Request, route string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetName(method(r.Method) + " " + route)
	span.SetAttributes(attribute.String("gatehouse.route", route))
}

// Transport wraps rt so that each request runs in a client span named
// "<METHOD> <op>", such as "POST provider" or "GET upstream", and carries a
// traceparent header naming that span. Trace context headers already on
// the request (traceparent, tracestate), such as ones a browser sent to the
// proxy, are replaced rather than forwarded. The span's url.full loses its
// query before export. A nil rt stands for http.DefaultTransport when t is
// enabled; a nil or disabled t returns rt unchanged.
func (t *Tracing) Transport(op string, rt http.RoundTripper) http.RoundTripper {
	if !t.Enabled() {
		return rt
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	return replaceTraceHeaders{otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return method(r.Method) + " " + op }),
	)}
}

// replaceTraceHeaders removes inbound trace context headers before the
// instrumented transport sets its own: the W3C propagator leaves a stale
// tracestate in place when the new span has none.
type replaceTraceHeaders struct{ next http.RoundTripper }

func (rt replaceTraceHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(r.Header.Values("Traceparent")) > 0 || len(r.Header.Values("Tracestate")) > 0 {
		// A RoundTripper must not change the request it is given.
		r = r.Clone(r.Context())
		r.Header.Del("Traceparent")
		r.Header.Del("Tracestate")
	}
	return rt.next.RoundTrip(r)
}

// method bounds the method in span names: request methods are
// client-chosen.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	case "":
		return http.MethodGet // net/http: an empty client method means GET
	}
	return "HTTP"
}
