package tracing

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names the tracer Gatehouse's spans come from.
const instrumentationName = "github.com/gatehouse-bff/gatehouse/internal/tracing"

// Options configures New. The zero value turns tracing off.
type Options struct {
	// OTLPEndpoint is the OTLP/HTTP collector URL, such as
	// http://127.0.0.1:4318. A URL without a path sends to /v1/traces;
	// one with a path sends there as is. Empty, with a nil Exporter,
	// turns tracing off.
	OTLPEndpoint string
	// Exporter receives the spans instead of an OTLP exporter, such as an
	// in-memory exporter in tests. It wins over OTLPEndpoint. Tracing
	// shuts it down on Shutdown.
	Exporter sdktrace.SpanExporter
	// ServiceName is the service.name resource attribute. Default
	// "gatehouse".
	ServiceName string
	// Version is the service.version resource attribute; empty omits it.
	Version string
	// SampleRatio is the share of new traces sampled, between 0 and 1.
	// nil means 1. A span whose parent is trusted (see TrustParent)
	// follows its parent's decision.
	SampleRatio *float64
	// TrustParent reports whether the trace context an inbound request
	// carries may be continued, for example because the request came
	// through a trusted proxy that starts traces. nil trusts no request:
	// each inbound request starts a new trace linked to the claimed one.
	TrustParent func(*http.Request) bool
}

// Tracing creates spans for Gatehouse and exports them. A nil or disabled
// Tracing creates no spans and its wrappers return what they are given.
// It is safe for concurrent use.
type Tracing struct {
	tp          trace.TracerProvider     // nil when disabled
	sdk         *sdktrace.TracerProvider // the provider New made, if any
	tracer      trace.Tracer
	trustParent func(*http.Request) bool
}

// FromProvider returns a Tracing whose spans come from tp, which its owner
// flushes and shuts down; nil returns a disabled Tracing.
func FromProvider(tp trace.TracerProvider) *Tracing {
	if tp == nil {
		return nil
	}
	return &Tracing{tp: tp, tracer: tp.Tracer(instrumentationName)}
}

// New builds a Tracing from opts. With neither OTLPEndpoint nor Exporter
// set, it returns a disabled Tracing and creates no exporter. New does not
// contact the collector.
func New(ctx context.Context, opts Options) (*Tracing, error) {
	t := &Tracing{trustParent: opts.TrustParent}
	if opts.OTLPEndpoint == "" && opts.Exporter == nil {
		t.tracer = noop.NewTracerProvider().Tracer(instrumentationName)
		return t, nil
	}
	ratio := 1.0
	if opts.SampleRatio != nil {
		ratio = *opts.SampleRatio
	}
	if !(ratio >= 0 && ratio <= 1) {
		return nil, fmt.Errorf("tracing: sample ratio %v is not between 0 and 1", ratio)
	}
	exp := opts.Exporter
	if exp == nil {
		endpoint, err := tracesURL(opts.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		if exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint)); err != nil {
			return nil, fmt.Errorf("tracing: creating the OTLP exporter: %w", err)
		}
	}
	name := opts.ServiceName
	if name == "" {
		name = "gatehouse"
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if opts.Version != "" {
		attrs = append(attrs, semconv.ServiceVersion(opts.Version))
	}
	t.sdk = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(scrubbingExporter{next: exp}),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	t.tp = t.sdk
	t.tracer = t.sdk.Tracer(instrumentationName)
	return t, nil
}

// tracesURL returns the OTLP/HTTP traces URL for endpoint.
func tracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("tracing: OTLP endpoint %q is not an http(s) URL", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Enabled reports whether t records and exports spans.
func (t *Tracing) Enabled() bool { return t != nil && t.tp != nil }

// TracerProvider returns the provider t's spans come from: a no-op
// provider when t is disabled. A command may install it as OpenTelemetry's
// global provider; Gatehouse's packages do not read the global.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if !t.Enabled() {
		return noop.NewTracerProvider()
	}
	return t.tp
}

// Propagator returns the W3C Trace Context propagator t uses.
func (t *Tracing) Propagator() propagation.TextMapPropagator {
	return propagation.TraceContext{}
}

// ForceFlush exports every ended span not yet exported, and returns when
// done or when ctx ends.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.ForceFlush(ctx); err != nil {
		return fmt.Errorf("tracing: flushing spans: %w", err)
	}
	return nil
}

// Shutdown exports the remaining spans and stops the exporter. Spans
// started afterwards are dropped. Shutting down a disabled Tracing, or one
// made by FromProvider, does nothing.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutting down: %w", err)
	}
	return nil
}
