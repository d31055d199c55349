package systemtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/metrics"
	"github.com/gatehouse-bff/gatehouse/internal/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// scrape reads the registry through its HTTP exposition, as Prometheus
// would, and returns every sample as "name{labels}" → value.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	w := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func TestMetricsFollowAFlow(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t)
	e.options = []gatehouse.Option{gatehouse.WithMetrics(reg)}
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()))
	op.SetClock(e.clock.Now)
	op.SetAccessTokenTTL(5 * time.Minute)
	e.start(op.URL, nil)

	b := e.browser()
	b.login("/")
	b.api("GET", "/api/a")
	b.do("GET", "/api/a", nil, false) // CSRF header missing
	e.clock.Advance(6 * time.Minute)
	b.api("GET", "/api/b") // refresh
	_, claims := b.user()
	lu, _ := claims["bff:logout_url"].(string)
	b.do("GET", lu, nil, false)

	got := scrape(t, reg)
	for key, want := range map[string]float64{
		"gatehouse_sessions_started_total{}":                                    1,
		"gatehouse_sessions_ended_total{reason=logout}":                         1,
		"gatehouse_token_refresh_total{outcome=ok}":                             1,
		"gatehouse_csrf_rejected_total{reason=header}":                          1,
		"gatehouse_http_requests_total{code=200,method=GET,route=api:/api/}":    2,
		"gatehouse_http_requests_total{code=403,method=GET,route=api:/api/}":    1,
		"gatehouse_http_requests_total{code=302,method=GET,route=bff_login}":    1,
		"gatehouse_http_requests_total{code=302,method=GET,route=bff_logout}":   1,
		"gatehouse_http_requests_total{code=302,method=GET,route=bff_callback}": 1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	if got["gatehouse_store_operation_duration_seconds{op=get}"] == 0 {
		t.Error("store calls were not timed")
	}
	var providerCalls float64
	for k, v := range got {
		if strings.HasPrefix(k, "gatehouse_provider_request_duration_seconds") {
			providerCalls += v
		}
	}
	if providerCalls < 3 {
		t.Errorf("provider calls observed = %v, want discovery, token and refresh at least", providerCalls)
	}
}

func TestRateLimitOnLogin(t *testing.T) {
	e, _ := startWithHostileProvider(t, func(c *config.Config) { c.Server.RateLimit = 3 })
	b := e.browser()
	codes := []int{}
	for range 5 {
		codes = append(codes, b.do("GET", "/bff/login", nil, false).StatusCode)
	}
	if codes[0] != http.StatusFound || codes[4] != http.StatusTooManyRequests {
		t.Errorf("login statuses %v, want redirects then 429", codes)
	}
	// Other endpoints and other clients' budgets are untouched.
	if r := b.api("GET", "/bff/user"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("/bff/user after login limit = %d", r.StatusCode)
	}
}

func TestOversizedRequestsRefused(t *testing.T) {
	e, _ := startWithHostileProvider(t, nil)
	c := e.srv.Client()
	big := strings.Repeat("a", 100<<10)
	resp, err := c.Post(e.publicURL+"/bff/backchannel", "application/x-www-form-urlencoded", strings.NewReader("logout_token="+big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized back-channel body = %d, want 413", resp.StatusCode)
	}
}

func TestTraceCoversInboundProviderStoreAndUpstream(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := tracing.New(context.Background(), tracing.Options{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.options = []gatehouse.Option{gatehouse.WithTracerProvider(tr.TracerProvider())}
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()))
	e.start(op.URL, nil)
	e.srv.Config.Handler = tr.Handler("gatehouse", e.gw)

	b := e.browser()
	b.login("/")
	if resp := b.api("GET", "/api/traced"); resp.StatusCode != http.StatusOK {
		t.Fatalf("API call = %d", resp.StatusCode)
	}
	tr.ForceFlush(context.Background())
	got, _ := e.api.Last()
	tp := got.Header.Get("Traceparent")
	if tp == "" {
		t.Fatal("upstream received no traceparent")
	}
	names := map[string]bool{}
	var apiTrace string
	for _, s := range exp.GetSpans() {
		names[s.Name] = true
		if s.Name == "GET api:/api/" {
			apiTrace = s.SpanContext.TraceID().String()
		}
	}
	for _, want := range []string{"GET bff_login", "GET bff_callback", "GET api:/api/", "POST provider", "GET upstream", "session.store get"} {
		if !names[want] {
			t.Errorf("no %q span; spans: %v", want, names)
		}
	}
	if apiTrace == "" || !strings.Contains(tp, apiTrace) {
		t.Errorf("upstream traceparent %q is not in the API request's trace %q", tp, apiTrace)
	}
}

func TestHealthOnConfiguredPaths(t *testing.T) {
	e, _ := startWithHostileProvider(t, func(c *config.Config) { c.Server.HealthPath, c.Server.ReadyPath = "/healthz", "/ready" })
	b := e.browser()
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/ready": http.StatusOK, "/bff/healthz": http.StatusOK} {
		if r := b.do("GET", path, nil, false); r.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, r.StatusCode, want)
		}
	}
}
