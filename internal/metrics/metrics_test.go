package metrics

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden")

func newMetrics(t *testing.T, opts ...Option) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// describe renders the families' names, types, help texts and label names,
// one family per line, sorted.
func describe(fams []*dto.MetricFamily) string {
	var lines []string
	for _, f := range fams {
		var labels []string
		if len(f.GetMetric()) > 0 {
			for _, lp := range f.GetMetric()[0].GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		lines = append(lines, fmt.Sprintf("%s %s {%s} %s", f.GetName(), strings.ToLower(f.GetType().String()), strings.Join(labels, ","), f.GetHelp()))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// touchAll records one value in every metric.
func touchAll(m *Metrics) {
	h := m.Middleware(func(*http.Request) string { return "frontend" }, http.NotFoundHandler())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	m.SessionStarted()
	m.SessionEnded("logout")
	m.Refresh("ok")
	m.ProviderCall("token", time.Millisecond, errors.New("boom"))
	m.StoreCall("get", time.Millisecond, errors.New("boom"))
	m.CSRFRejected("header")
	m.LeakBlocked()
	m.RateLimited("bff_login")
	m.StreamOpened()
	m.StreamOpened()
	m.StreamClosed("logout")
}

func TestExpositionMatchesGolden(t *testing.T) {
	m, reg := newMetrics(t, WithActiveSessions(func() float64 { return 3 }))
	touchAll(m)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := describe(fams)
	const golden = "testdata/metrics.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("metrics changed (run go test -update if intended):\ngot:\n%s\nwant:\n%s", got, want)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestActiveSessionsOnlyWithOption(t *testing.T) {
	m, reg := newMetrics(t)
	touchAll(m)
	if n, _ := testutil.GatherAndCount(reg, "gatehouse_sessions_active"); n != 0 {
		t.Errorf("gatehouse_sessions_active exported without WithActiveSessions")
	}
	_, reg = newMetrics(t, WithActiveSessions(func() float64 { return 7 }))
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP gatehouse_sessions_active Sessions in the session store.
# TYPE gatehouse_sessions_active gauge
gatehouse_sessions_active 7
`), "gatehouse_sessions_active")
	if err != nil {
		t.Error(err)
	}
}

func TestNewRegistersOnlyWithGivenRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil || !strings.HasPrefix(err.Error(), "metrics: ") {
		t.Fatalf("second New on one registry: err = %v", err)
	}

	// A name taken late in the list makes New fail after registering the
	// others; it must take them back.
	reg = prometheus.NewRegistry()
	squatter := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_rate_limited_total",
		Help: "Requests refused by a rate limit, by endpoint.",
	}, []string{"endpoint"})
	reg.MustRegister(squatter)
	if _, err := New(reg); err == nil {
		t.Fatal("New succeeded despite a name clash")
	}
	reg.Unregister(squatter)
	if _, err := New(reg); err != nil {
		t.Fatalf("New after a failed New: %v", err)
	}

	m, err := New(nil)
	if err != nil || m == nil {
		t.Fatalf("New(nil) = %v, %v", m, err)
	}
	m.Refresh("ok")
	if got := testutil.ToFloat64(m.refreshes.WithLabelValues("ok")); got != 1 {
		t.Errorf("unregistered metrics record: got %v", got)
	}
	fams, _ := prometheus.DefaultGatherer.Gather()
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "gatehouse_") {
			t.Errorf("%s registered globally", f.GetName())
		}
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	touchAll(m)
	next := http.NotFoundHandler()
	if h := m.Middleware(func(*http.Request) string { return "x" }, next); fmt.Sprint(h) != fmt.Sprint(next) {
		t.Error("nil Middleware wrapped the handler")
	}
	s := memstore.New(memstore.Options{SweepInterval: -1})
	defer s.Close()
	if InstrumentStore(nil, s) != store.Store(s) {
		t.Error("nil InstrumentStore wrapped the store")
	}
	if InstrumentRoundTripper(nil, "token", nil) != http.DefaultTransport {
		t.Error("nil InstrumentRoundTripper wrapped the transport")
	}
}

func TestCountersByLabel(t *testing.T) {
	m, _ := newMetrics(t)
	m.SessionStarted()
	m.SessionStarted()
	m.SessionEnded("idle")
	m.Refresh("failed")
	m.CSRFRejected("origin")
	m.LeakBlocked()
	m.RateLimited("backchannel")
	m.RateLimited("backchannel")
	m.ProviderCall("jwks", 2*time.Second, nil)
	m.ProviderCall("jwks", time.Second, errors.New("x"))
	m.StoreCall("get", time.Millisecond, store.ErrNotFound)
	m.StoreCall("get", time.Millisecond, fmt.Errorf("wrapped: %w", store.ErrNotFound))
	m.StoreCall("update", time.Millisecond, errors.New("down"))
	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"started", m.sessionsStarted, 2},
		{"ended idle", m.sessionsEnded.WithLabelValues("idle"), 1},
		{"refresh failed", m.refreshes.WithLabelValues("failed"), 1},
		{"csrf origin", m.csrfRejected.WithLabelValues("origin"), 1},
		{"leaks", m.leaksBlocked, 1},
		{"rate limited", m.rateLimited.WithLabelValues("backchannel"), 2},
		{"provider errors", m.providerErrors.WithLabelValues("jwks"), 1},
		{"store not found is no error", m.storeErrors.WithLabelValues("get"), 0},
		{"store error", m.storeErrors.WithLabelValues("update"), 1},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
	if n := histogramCount(t, m.providerCalls, "jwks"); n != 2 {
		t.Errorf("provider calls observed = %d, want 2", n)
	}
	if n := histogramCount(t, m.storeCalls, "get"); n != 2 {
		t.Errorf("store gets observed = %d, want 2", n)
	}
}

func histogramCount(t *testing.T, h *prometheus.HistogramVec, label string) uint64 {
	t.Helper()
	var d dto.Metric
	if err := h.WithLabelValues(label).(prometheus.Metric).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram().GetSampleCount()
}

func TestMiddlewareLabels(t *testing.T) {
	tests := []struct {
		name             string
		method           string
		handler          http.HandlerFunc
		wantMethod, code string
	}{
		{"implicit 200", http.MethodGet, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }, "GET", "200"},
		{"nothing written", http.MethodPost, func(w http.ResponseWriter, r *http.Request) {}, "POST", "200"},
		{"explicit status", http.MethodDelete, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }, "DELETE", "403"},
		{"early hints", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusServiceUnavailable)
		}, "GET", "503"},
		{"unknown method", "BREW", func(w http.ResponseWriter, r *http.Request) {}, "OTHER", "200"},
		{"read from", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			w.(io.ReaderFrom).ReadFrom(strings.NewReader("body"))
		}, "GET", "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newMetrics(t)
			var seen *http.Request
			h := m.Middleware(func(r *http.Request) string { seen = r; return "api:/api/" }, tt.handler)
			r := httptest.NewRequest(tt.method, "/api/x", nil)
			h.ServeHTTP(httptest.NewRecorder(), r)
			if seen != r {
				t.Error("route func not called with the request")
			}
			if got := testutil.ToFloat64(m.requests.WithLabelValues("api:/api/", tt.wantMethod, tt.code)); got != 1 {
				t.Errorf("requests{%s,%s} = %v, want 1", tt.wantMethod, tt.code, got)
			}
			if got := testutil.CollectAndCount(m.requests); got != 1 {
				t.Errorf("%d request series, want 1", got)
			}
			if n := histogramCount(t, m.requestDuration, "api:/api/"); n != 1 {
				t.Errorf("durations observed = %d, want 1", n)
			}
			if got := testutil.ToFloat64(m.inFlight.WithLabelValues("api:/api/")); got != 0 {
				t.Errorf("in flight after the request = %v", got)
			}
		})
	}
}

func TestMiddlewareKeepsStreamingAndUpgrades(t *testing.T) {
	m, _ := newMetrics(t)
	inFlight := make(chan float64, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		inFlight <- testutil.ToFloat64(m.inFlight.WithLabelValues("stream"))
		io.WriteString(w, "event")
		w.(http.Flusher).Flush()
		if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
			t.Errorf("ResponseController cannot reach the connection: %v", err)
		}
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nhi")
		brw.Flush()
	})
	route := func(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, "/") }
	// A hijacked connection's handler outlives srv.Close, so wait for each
	// request explicitly.
	done := make(chan struct{}, 2)
	measured := m.Middleware(route, mux)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		measured.ServeHTTP(w, r)
		done <- struct{}{}
	}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "event" {
		t.Errorf("stream body = %q", body)
	}
	if got := <-inFlight; got != 1 {
		t.Errorf("in flight during the request = %v, want 1", got)
	}

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	br := bufio.NewReader(conn)
	up, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(br); up.StatusCode != http.StatusSwitchingProtocols || string(rest) != "hi" {
		t.Errorf("upgrade: %d %q", up.StatusCode, rest)
	}
	<-done
	<-done

	if got := testutil.ToFloat64(m.requests.WithLabelValues("stream", "GET", "200")); got != 1 {
		t.Errorf("stream requests = %v", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("upgrade", "GET", "101")); got != 1 {
		t.Errorf("upgrade requests = %v", got)
	}
	if n := histogramCount(t, m.requestDuration, "upgrade"); n != 0 {
		t.Errorf("upgraded connection observed as a request duration")
	}
}

func TestInstrumentRoundTripper(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusBadGateway)
		case "/bad":
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	m, _ := newMetrics(t)
	c := &http.Client{Transport: InstrumentRoundTripper(m, "token", srv.Client().Transport)}
	for _, p := range []string{"/ok", "/bad", "/fail"} {
		resp, err := c.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	req, _ := http.NewRequestWithContext(WithOp(context.Background(), "jwks"), http.MethodGet, srv.URL+"/fail", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := histogramCount(t, m.providerCalls, "jwks"); n != 1 {
		t.Errorf("calls tagged jwks = %d, want 1", n)
	}
	if got := testutil.ToFloat64(m.providerErrors.WithLabelValues("jwks")); got != 1 {
		t.Errorf("jwks errors = %v, want 1", got)
	}
	dead := srv.URL
	srv.Close()
	if _, err := c.Get(dead); err == nil {
		t.Fatal("request to a closed server succeeded")
	}
	if n := histogramCount(t, m.providerCalls, "token"); n != 4 {
		t.Errorf("calls observed = %d, want 4", n)
	}
	if got := testutil.ToFloat64(m.providerErrors.WithLabelValues("token")); got != 2 {
		t.Errorf("errors = %v, want 2 (the 502 and the transport failure)", got)
	}
}

func TestInstrumentStoreRecordsEveryOperation(t *testing.T) {
	ctx := context.Background()
	m, _ := newMetrics(t)
	fail := errors.New("store down")
	s := InstrumentStore(m, &testkit.FailingStore{Err: fail})
	calls := map[string]func() error{
		"get":             func() error { _, err := s.Get(ctx, "k"); return err },
		"create":          func() error { return s.Create(ctx, &store.Record{}) },
		"update":          func() error { return s.Update(ctx, &store.Record{}) },
		"delete":          func() error { return s.Delete(ctx, "k") },
		"delete_matching": func() error { _, err := s.DeleteMatching(ctx, store.Filter{Issuer: "i", SID: "s"}); return err },
		"list":            func() error { _, err := s.List(ctx, store.Filter{Issuer: "i", Subject: "s"}); return err },
		"once":            func() error { _, err := s.Once(ctx, "k", time.Second); return err },
		"ping":            func() error { return s.Ping(ctx) },
	}
	for op, call := range calls {
		if err := call(); !errors.Is(err, fail) {
			t.Errorf("%s: error %v not passed through", op, err)
		}
		if n := histogramCount(t, m.storeCalls, op); n != 1 {
			t.Errorf("%s observed %d times, want 1", op, n)
		}
		if got := testutil.ToFloat64(m.storeErrors.WithLabelValues(op)); got != 1 {
			t.Errorf("%s errors = %v, want 1", op, got)
		}
	}
}

func TestInstrumentStoreWithMemstore(t *testing.T) {
	ctx := context.Background()
	m, _ := newMetrics(t)
	inner := memstore.New(memstore.Options{SweepInterval: -1})
	s := InstrumentStore(m, inner)
	defer s.Close()
	rec := &store.Record{Key: "k", Issuer: "i", Subject: "s", ExpiresAt: time.Now().Add(time.Hour), Data: []byte("d")}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "k"); err != nil || string(got.Data) != "d" {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	if n := histogramCount(t, m.storeCalls, "get"); n != 2 {
		t.Errorf("gets observed = %d", n)
	}
	if got := testutil.CollectAndCount(m.storeErrors); got != 0 {
		t.Errorf("not found counted as a store error")
	}
}
