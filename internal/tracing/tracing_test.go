package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Secrets planted in requests; none may appear in any exported span.
const (
	secretCode   = "CODE-5ecret-c0de"
	secretState  = "STATE-5ecret-5tate"
	secretCookie = "COOKIE-5ecret-c00kie"
	secretToken  = "TOKEN-5ecret-t0ken"
	secretQuery  = "APIQUERY-5ecret-q"
	secretUser   = "USERINFO-5ecret-u"
)

var secrets = []string{secretCode, secretState, secretCookie, secretToken, secretQuery, secretUser}

func newEnabled(t *testing.T, opts Options) (*Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	opts.Exporter = exp
	tr, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled() {
		t.Fatal("tracing with an exporter is not enabled")
	}
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return tr, exp
}

// spans flushes tr and returns what exp received.
func spans(t *testing.T, tr *Tracing, exp *tracetest.InMemoryExporter) tracetest.SpanStubs {
	t.Helper()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return exp.GetSpans()
}

// upstream is an API server that records the trace headers it receives.
type upstream struct {
	*httptest.Server
	mu          sync.Mutex
	traceparent []string
	tracestate  []string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.traceparent = append(u.traceparent, r.Header.Get("Traceparent"))
		u.tracestate = append(u.tracestate, r.Header.Get("Tracestate"))
		u.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) headers() (traceparent, tracestate []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.traceparent...), append([]string(nil), u.tracestate...)
}

// gateway serves an inbound request by calling the upstream through rt,
// with a query, an Authorization header and userinfo that are secret, and
// copying the inbound trace headers as a careless proxy would.
func gateway(t *testing.T, tr *Tracing, up *upstream) *httptest.Server {
	rt := tr.Transport("upstream", up.Client().Transport)
	srv := httptest.NewServer(tr.Handler("gatehouse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := strings.Replace(up.URL, "http://", "http://"+secretUser+":pw@", 1) + "/api/items?key=" + secretQuery
		out, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
		if err != nil {
			t.Error(err)
			return
		}
		out.Header.Set("Authorization", "Bearer "+secretToken)
		for _, h := range []string{"Traceparent", "Tracestate"} {
			if v := r.Header.Get(h); v != "" {
				out.Header.Set(h, v)
			}
		}
		resp, err := (&http.Client{Transport: rt}).Do(out)
		if err != nil {
			t.Error(err)
			http.Error(w, "upstream failed", http.StatusBadGateway)
			return
		}
		io.Copy(w, resp.Body)
		resp.Body.Close()
	})))
	t.Cleanup(srv.Close)
	return srv
}

// browserGet sends an inbound request carrying secrets in the query, a
// cookie and an Authorization header, plus the given extra headers.
func browserGet(t *testing.T, srv *httptest.Server, header map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/callback?code="+secretCode+"&state="+secretState, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", "__Host-gatehouse="+secretCookie)
	req.Header.Set("Authorization", "Bearer "+secretToken)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("gateway answered %d %q", resp.StatusCode, body)
	}
}

func byKind(t *testing.T, got tracetest.SpanStubs, kind trace.SpanKind) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range got {
		if s.SpanKind == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("got %d spans of kind %v, want 1 (all: %v)", len(found), kind, names(got))
	}
	return found[0]
}

func names(ss tracetest.SpanStubs) []string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name)
	}
	return n
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// assertNoSecrets fails when any exported text of ss contains a planted
// secret.
func assertNoSecrets(t *testing.T, ss tracetest.SpanStubs) {
	t.Helper()
	check := func(where, v string) {
		for _, s := range secrets {
			if strings.Contains(v, s) {
				t.Errorf("%s %q contains the secret %q", where, v, s)
			}
		}
	}
	checkAttrs := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			check(where+" attribute "+string(kv.Key), kv.Value.String())
		}
	}
	for _, s := range ss {
		check("span name", s.Name)
		check(s.Name+" status", s.Status.Description)
		checkAttrs(s.Name, s.Attributes)
		for _, ev := range s.Events {
			check(s.Name+" event", ev.Name)
			checkAttrs(s.Name+" event "+ev.Name, ev.Attributes)
		}
		for _, l := range s.Links {
			checkAttrs(s.Name+" link", l.Attributes)
		}
	}
}

func TestInboundAndOutboundSpansShareOneTrace(t *testing.T) {
	tr, exp := newEnabled(t, Options{ServiceName: "gatehouse-test", Version: "v1.2.3"})
	up := newUpstream(t)
	browserGet(t, gateway(t, tr, up), nil)

	got := spans(t, tr, exp)
	if len(got) != 2 {
		t.Fatalf("got spans %v, want a server and a client span", names(got))
	}
	server := byKind(t, got, trace.SpanKindServer)
	client := byKind(t, got, trace.SpanKindClient)
	if server.Name != "GET gatehouse" || client.Name != "GET upstream" {
		t.Errorf("span names %q, %q; want %q, %q", server.Name, client.Name, "GET gatehouse", "GET upstream")
	}
	if client.SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Errorf("client span in trace %s, server span in %s", client.SpanContext.TraceID(), server.SpanContext.TraceID())
	}
	if client.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("client span's parent is %s, want the server span %s", client.Parent.SpanID(), server.SpanContext.SpanID())
	}
	if server.Parent.IsValid() {
		t.Errorf("server span has parent %v, want a root span", server.Parent)
	}

	tps, _ := up.headers()
	if len(tps) != 1 {
		t.Fatalf("upstream saw %d requests", len(tps))
	}
	want := "00-" + client.SpanContext.TraceID().String() + "-" + client.SpanContext.SpanID().String() + "-01"
	if tps[0] != want {
		t.Errorf("upstream traceparent %q, want %q", tps[0], want)
	}

	// The scrubbed URL is still recorded, without its query or userinfo.
	if v, ok := attr(client, "url.full"); !ok || v.AsString() != up.URL+"/api/items" {
		t.Errorf("client url.full = %q, want %q", v.String(), up.URL+"/api/items")
	}
	if v, ok := attr(server, "url.path"); !ok || v.AsString() != "/callback" {
		t.Errorf("server url.path = %q, want /callback", v.String())
	}
	if v, ok := attr(server, "http.response.status_code"); !ok || v.AsInt64() != http.StatusOK {
		t.Errorf("server status code = %v", v.String())
	}
	if got := server.Resource.Attributes(); !hasAttr(got, "service.name", "gatehouse-test") || !hasAttr(got, "service.version", "v1.2.3") {
		t.Errorf("resource %v lacks the service name and version", got)
	}
	assertNoSecrets(t, got)
}

func hasAttr(kvs []attribute.KeyValue, k, v string) bool {
	for _, kv := range kvs {
		if string(kv.Key) == k && kv.Value.AsString() == v {
			return true
		}
	}
	return false
}

func TestInboundTraceContext(t *testing.T) {
	const (
		claimedTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		claimedSpan  = "00f067aa0ba902b7"
	)
	inbound := map[string]string{
		"Traceparent": "00-" + claimedTrace + "-" + claimedSpan + "-01",
		"Tracestate":  "vendor=opaque",
	}
	tests := []struct {
		name  string
		trust func(*http.Request) bool
		want  bool // whether the claimed trace is continued
	}{
		{"untrusted by default", nil, false},
		{"rejected by TrustParent", func(*http.Request) bool { return false }, false},
		{"accepted by TrustParent", func(r *http.Request) bool { return strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, exp := newEnabled(t, Options{TrustParent: tt.trust})
			up := newUpstream(t)
			browserGet(t, gateway(t, tr, up), inbound)
			got := spans(t, tr, exp)
			server := byKind(t, got, trace.SpanKindServer)
			client := byKind(t, got, trace.SpanKindClient)

			continued := server.SpanContext.TraceID().String() == claimedTrace
			if continued != tt.want {
				t.Fatalf("server span in trace %s; continued the claimed trace: %v, want %v", server.SpanContext.TraceID(), continued, tt.want)
			}
			if tt.want {
				if server.Parent.SpanID().String() != claimedSpan || !server.Parent.IsRemote() {
					t.Errorf("server span's parent %v, want remote span %s", server.Parent, claimedSpan)
				}
			} else {
				if server.Parent.IsValid() {
					t.Errorf("server span has parent %v, want a new root", server.Parent)
				}
				if len(server.Links) != 1 || server.Links[0].SpanContext.TraceID().String() != claimedTrace {
					t.Errorf("server span links %v, want one to the claimed trace", server.Links)
				}
			}

			tps, tss := up.headers()
			want := "00-" + client.SpanContext.TraceID().String() + "-" + client.SpanContext.SpanID().String() + "-01"
			if len(tps) != 1 || tps[0] != want {
				t.Errorf("upstream traceparent %q, want %q", tps, want)
			}
			// The inbound tracestate is only forwarded as part of a
			// continued trace.
			wantState := ""
			if tt.want {
				wantState = inbound["Tracestate"]
			}
			if len(tss) != 1 || tss[0] != wantState {
				t.Errorf("upstream tracestate %q, want %q", tss, wantState)
			}
			assertNoSecrets(t, tracetest.SpanStubs{client})
		})
	}
}

func TestDisabledAddsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		tr   func(t *testing.T) *Tracing
	}{
		{"zero options", func(t *testing.T) *Tracing {
			tr, err := New(context.Background(), Options{ServiceName: "x", SampleRatio: new(1.0)})
			if err != nil {
				t.Fatal(err)
			}
			return tr
		}},
		{"nil", func(*testing.T) *Tracing { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := tc.tr(t)
			if tr.Enabled() {
				t.Fatal("Enabled() = true")
			}
			if rt := tr.Transport("upstream", nil); rt != nil {
				t.Errorf("Transport(nil) = %v, want nil", rt)
			}
			base := http.DefaultTransport
			if rt := tr.Transport("upstream", base); rt != base {
				t.Errorf("Transport wrapped the round tripper")
			}
			if tp := tr.TracerProvider(); tp == nil {
				t.Error("TracerProvider() = nil")
			} else if _, span := tp.Tracer("t").Start(context.Background(), "s"); span.SpanContext().IsValid() || span.IsRecording() {
				t.Error("the disabled tracer provider creates real spans")
			}
			up := newUpstream(t)
			browserGet(t, gateway(t, tr, up), nil)
			if tps, _ := up.headers(); len(tps) != 1 || tps[0] != "" {
				t.Errorf("upstream got traceparent %q, want none", tps)
			}
			if err := tr.ForceFlush(context.Background()); err != nil {
				t.Error(err)
			}
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSampleRatioZeroExportsNothing(t *testing.T) {
	tr, exp := newEnabled(t, Options{SampleRatio: new(0.0)})
	up := newUpstream(t)
	browserGet(t, gateway(t, tr, up), nil)
	if got := spans(t, tr, exp); len(got) != 0 {
		t.Errorf("exported %v with sample ratio 0", names(got))
	}
	tps, _ := up.headers()
	if len(tps) != 1 || !strings.HasSuffix(tps[0], "-00") {
		t.Errorf("upstream traceparent %q, want one flagged not sampled", tps)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"ratio above one", Options{Exporter: tracetest.NewInMemoryExporter(), SampleRatio: new(1.5)}},
		{"negative ratio", Options{Exporter: tracetest.NewInMemoryExporter(), SampleRatio: new(-0.1)}},
		{"endpoint without scheme", Options{OTLPEndpoint: "127.0.0.1:4318"}},
		{"endpoint with another scheme", Options{OTLPEndpoint: "grpc://127.0.0.1:4317"}},
		{"endpoint without host", Options{OTLPEndpoint: "http:///v1/traces"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := New(context.Background(), tt.opts)
			if err == nil {
				tr.Shutdown(context.Background())
				t.Fatal("New succeeded")
			}
			if !strings.HasPrefix(err.Error(), "tracing: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestHandlerKeepsResponseWriterInterfaces(t *testing.T) {
	tr, _ := newEnabled(t, Options{})
	type seen struct{ flusher, hijacker bool }
	ch := make(chan seen, 1)
	srv := httptest.NewServer(tr.Handler("gatehouse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, f := w.(http.Flusher)
		_, h := w.(http.Hijacker)
		ch <- seen{f, h}
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := <-ch; !got.flusher || !got.hijacker {
		t.Errorf("handler saw Flusher %v, Hijacker %v; want both", got.flusher, got.hijacker)
	}
}

func TestShutdownExportsEndedSpansAndStopsTheExporter(t *testing.T) {
	exp := &recordingExporter{}
	tr, err := New(context.Background(), Options{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("t").Start(context.Background(), "before")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.names(); len(got) != 1 || got[0] != "before" || !exp.isShutdown() {
		t.Errorf("exported %v, exporter shut down: %v; want [before] and true", got, exp.isShutdown())
	}
	if _, span := tr.TracerProvider().Tracer("t").Start(context.Background(), "after"); span.IsRecording() {
		t.Error("a span started after Shutdown records")
	}
}

// recordingExporter remembers exported span names and whether it was shut
// down (an InMemoryExporter forgets its spans on Shutdown).
type recordingExporter struct {
	mu       sync.Mutex
	spans    []string
	shutdown bool
}

func (e *recordingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		e.spans = append(e.spans, s.Name())
	}
	return nil
}

func (e *recordingExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown = true
	return nil
}

func (e *recordingExporter) names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.spans...)
}

func (e *recordingExporter) isShutdown() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.shutdown
}

func TestSetRouteNamesTheServerSpan(t *testing.T) {
	tr, exp := newEnabled(t, Options{})
	h := tr.Handler("gatehouse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetRoute(r, "bff_user")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/bff/user?x=1", nil))
	got := spans(t, tr, exp)
	if len(got) != 1 || got[0].Name != "POST bff_user" {
		t.Fatalf("spans %v, want [POST bff_user]", names(got))
	}
	if v, ok := attr(got[0], "gatehouse.route"); !ok || v.AsString() != "bff_user" {
		t.Errorf("gatehouse.route = %q", v.String())
	}
	// Outside a traced request it does nothing.
	SetRoute(httptest.NewRequest(http.MethodGet, "/", nil), "frontend")
}

func TestSpanNamesBoundTheMethod(t *testing.T) {
	tr, exp := newEnabled(t, Options{})
	h := tr.Handler("gatehouse", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("X-RANDOM-12345", "/", nil))
	if got := spans(t, tr, exp); len(got) != 1 || got[0].Name != "HTTP gatehouse" {
		t.Errorf("spans %v, want [HTTP gatehouse]", names(got))
	}
}
