package systemtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider/devprovidertest"
	"github.com/gatehouse-bff/gatehouse/internal/logging"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// benchJSON is the upstream's answer: about 200 bytes of JSON.
var benchJSON = `{"orders":[` + strings.Repeat(`{"id":1234,"total":"19.90","state":"paid"},`, 4) + `{"id":1235,"total":"5.00","state":"open"}],"page":2}`

// secureJar stores and returns cookies for http URLs as if they were
// https, so that the login flow can carry the gateway's Secure __Host-
// cookies over a plain-http loopback server.
type secureJar struct{ http.CookieJar }

func asHTTPS(u *url.URL) *url.URL {
	c := *u
	c.Scheme = "https"
	return &c
}

func (j secureJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	j.CookieJar.SetCookies(asHTTPS(u), cs)
}

func (j secureJar) Cookies(u *url.URL) []*http.Cookie { return j.CookieJar.Cookies(asHTTPS(u)) }

// benchSetup is a signed-in gateway and a bare reverse proxy, each on its
// own plain-http loopback server, in front of the same upstream.
type benchSetup struct {
	gw, bare       http.Handler
	gwURL, bareURL string
	cookie         string // Cookie header value carrying the session
}

func newBenchSetup(b testing.TB, store func(*config.Config)) *benchSetup {
	b.Helper()
	// The upstream keeps the headers of the first call from the gateway,
	// so that the bare proxy can send it the same ones.
	var seen sync.Once
	var upstreamAuth, upstreamID []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			seen.Do(func() { upstreamAuth, upstreamID = r.Header["Authorization"], r.Header["X-Request-Id"] })
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, benchJSON)
	}))
	b.Cleanup(api.Close)

	gwSrv := httptest.NewUnstartedServer(nil)
	b.Cleanup(gwSrv.Close)
	publicURL := "http://" + gwSrv.Listener.Addr().String()
	// Long token lifetimes: no refresh happens during a run.
	op, _ := devprovidertest.NewTestServer(b, devprovider.Options{
		AccessTokenTTL: 24 * time.Hour,
		IDTokenTTL:     24 * time.Hour,
		Clients: []devprovider.Client{{
			ID: testClientID, Secret: testClientSecret,
			RedirectURIs: []string{publicURL + "/bff/callback"},
		}},
		AutoLogin: "alice",
	})
	cfg := &config.Config{
		Server:  config.Server{PublicURL: publicURL},
		OIDC:    config.OIDC{Issuer: op.Issuer(), ClientID: testClientID, ClientSecret: testClientSecret},
		Session: config.Session{Store: "memory", IdleTimeout: 24 * time.Hour, AbsoluteTimeout: 48 * time.Hour},
		Routes:  []config.Route{{Prefix: "/api/", Upstream: api.URL}},
	}
	if store != nil {
		store(cfg)
	}
	cfg.SetDefaults()
	// As `gatehouse serve` builds it: the text logger at the configured
	// level (writing to /dev/null, which still pays for formatting and the
	// write), metrics in a registry with the Go and process collectors, and
	// the access log around the gateway. The leak guard is on by default.
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { devNull.Close() })
	logger, err := logging.New(cfg.Log.Format, cfg.Log.Level, devNull)
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gateway, err := gatehouse.New(cfg, gatehouse.WithLogger(logger), gatehouse.WithMetrics(reg))
	if err != nil {
		b.Fatalf("gatehouse.New: %v", err)
	}
	b.Cleanup(func() { gateway.Close() })
	gw := logging.AccessLog(logger, gateway)
	gwSrv.Config.Handler = gw
	gwSrv.Start()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: secureJar{jar}, Timeout: 30 * time.Second}
	resp, err := c.Get(publicURL + "/bff/login?returnUrl=%2F")
	if err != nil {
		b.Fatalf("login: %v", err)
	}
	resp.Body.Close()
	u, _ := url.Parse(publicURL)
	var cookie string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == cfg.Session.CookieName {
			cookie = ck.Name + "=" + ck.Value
		}
	}
	if cookie == "" {
		b.Fatalf("login set no %s cookie (ended at %s with %d)", cfg.Session.CookieName, resp.Request.URL, resp.StatusCode)
	}

	// One call through the gateway shows the upstream what it sends.
	req, _ := http.NewRequest("GET", publicURL+"/api/orders", nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("X-CSRF", "1")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("first call through the gateway: %v", err)
	} else {
		resp.Body.Close()
	}
	if upstreamAuth == nil || upstreamID == nil {
		b.Fatal("the upstream saw no Authorization and X-Request-Id from the gateway")
	}

	// The bare proxy sends the upstream the same headers as the gateway
	// (its token and a request id, no session cookie), from values built
	// once, so it pays nothing for them.
	target, _ := url.Parse(api.URL)
	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			delete(pr.Out.Header, "Cookie")
			pr.Out.Header["Authorization"] = upstreamAuth
			pr.Out.Header["X-Request-Id"] = upstreamID
		},
		Transport: proxy.NewTransport(),
	}
	bareSrv := httptest.NewServer(bare)
	b.Cleanup(bareSrv.Close)
	return &benchSetup{gw: gw, bare: bare, gwURL: publicURL, bareURL: bareSrv.URL, cookie: cookie}
}

// benchRequest is the SPA's API call: session cookie and anti-forgery
// header, as a browser's fetch sends them.
func (s *benchSetup) request(b testing.TB, base string) *http.Request {
	req, err := http.NewRequest("GET", base+"/api/orders?page=2", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Cookie", s.cookie)
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Accept", "application/json")
	return req
}

// BenchmarkProxiedGET compares an authenticated API GET through Gatehouse
// (session lookup, CSRF check, token injection, header sanitising, leak
// guard) with a bare httputil.ReverseProxy using the same upstream
// transport, both over loopback HTTP/1.1 from the same client. The
// -handler variants call ServeHTTP directly, leaving out the client hop.
// Besides ns/op it reports the median request latency as p50-µs.
func BenchmarkProxiedGET(b *testing.B) {
	s := newBenchSetup(b, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	b.Cleanup(client.CloseIdleConnections)

	for _, tc := range []struct{ name, base string }{{"gatehouse", s.gwURL}, {"bare", s.bareURL}} {
		b.Run(tc.name, func(b *testing.B) {
			base := s.request(b, tc.base)
			runParallel(b, func() {
				resp, err := client.Do(base.Clone(base.Context()))
				if err != nil {
					b.Error(err)
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n != int64(len(benchJSON)) {
					b.Errorf("%s: status %d, %d bytes", tc.name, resp.StatusCode, n)
				}
			})
		})
	}
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"gatehouse-handler", s.gw}, {"bare-handler", s.bare}} {
		b.Run(tc.name, func(b *testing.B) {
			base := s.request(b, "http://127.0.0.1")
			base.RemoteAddr = "127.0.0.1:40000"
			runParallel(b, func() {
				w := httptest.NewRecorder()
				tc.h.ServeHTTP(w, base.Clone(base.Context()))
				if w.Code != http.StatusOK || w.Body.Len() != len(benchJSON) {
					b.Errorf("%s: status %d, %d bytes", tc.name, w.Code, w.Body.Len())
				}
			})
		})
	}
}

// TestProxiedGETAllocations holds the bound of issue #14: an authenticated
// API GET through Gatehouse in its default configuration (access log,
// metrics, leak guard) allocates at most 20 times more than the same call
// through a bare httputil.ReverseProxy (BenchmarkProxiedGET's -handler
// variants, one call at a time).
func TestProxiedGETAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts under the race detector are not the production ones")
	}
	s := newBenchSetup(t, nil)
	perCall := func(name string, h http.Handler) float64 {
		base := s.request(t, "http://127.0.0.1")
		base.RemoteAddr = "127.0.0.1:40000"
		call := func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, base.Clone(base.Context()))
			if w.Code != http.StatusOK || w.Body.Len() != len(benchJSON) {
				t.Fatalf("%s: status %d, %d bytes", name, w.Code, w.Body.Len())
			}
		}
		call() // connections and pools warm
		return testing.AllocsPerRun(200, call)
	}
	gw, bare := perCall("gatehouse", s.gw), perCall("bare", s.bare)
	t.Logf("allocations per call: gatehouse %.1f, bare %.1f", gw, bare)
	if gw > bare+20 {
		t.Errorf("gatehouse allocates %.1f times per call, bare %.1f: more than 20 over", gw, bare)
	}
}

// runParallel runs do under b.RunParallel, timing each call, and reports
// the median latency.
func runParallel(b *testing.B, do func()) {
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			start := time.Now()
			do()
			local = append(local, time.Since(start))
		}
		mu.Lock()
		all = append(all, local...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(all) > 0 {
		slices.Sort(all)
		b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e3, "p50-µs")
	}
}

// BenchmarkSessionStores runs the authenticated GET through Gatehouse with
// each session store in one run: memory, bolt, Redis (the test Redis
// server; see redistest), and Redis with the opt-in local cache. Compare their ns/op and p50-µs.
func BenchmarkSessionStores(b *testing.B) {
	key, _ := seal.GenerateKey("bench")
	redisURL := os.Getenv(redistest.EnvURL)
	if redisURL == "" {
		redisURL = redistest.Start(b).URL()
	}
	stores := []struct {
		name string
		set  func(*config.Config)
	}{
		{"memory", nil},
		{"bolt", func(c *config.Config) {
			c.Session.Store, c.Session.BoltPath, c.Session.Keys = "bolt", filepath.Join(b.TempDir(), "bench.db"), []string{key}
		}},
		{"redis", func(c *config.Config) {
			c.Session.Store, c.Session.RedisURL, c.Session.Keys = "redis", redisURL, []string{key}
			c.Redis.KeyPrefix = "{gatehouse-bench}:"
		}},
		{"redis-local-cache", func(c *config.Config) {
			c.Session.Store, c.Session.RedisURL, c.Session.Keys = "redis", redisURL, []string{key}
			c.Redis.KeyPrefix = "{gatehouse-bench-cached}:"
			c.Redis.LocalCacheTTL = time.Second
		}},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	b.Cleanup(client.CloseIdleConnections)
	for _, st := range stores {
		s := newBenchSetup(b, st.set)
		b.Run(st.name, func(b *testing.B) {
			base := s.request(b, s.gwURL)
			runParallel(b, func() {
				resp, err := client.Do(base.Clone(base.Context()))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("%s: status %d", st.name, resp.StatusCode)
				}
			})
		})
	}
}

// BenchmarkApps compares the per-request cost of an authenticated API GET
// on a gateway serving one app with the same call on a gateway serving 50
// apps, where the call's app (the top-level one) is found after every
// path-based app was tried. Compare apps=50 with apps=1 in one run.
func BenchmarkApps(b *testing.B) {
	for _, n := range []int{1, 50} {
		s := newBenchSetup(b, func(c *config.Config) {
			for i := range n - 1 {
				name := fmt.Sprintf("app-%02d", i)
				c.Apps = append(c.Apps, config.App{Name: name, Path: "/" + name,
					Routes: []config.Route{{Prefix: "/" + name + "/api/", Upstream: "http://127.0.0.1:1"}}})
			}
		})
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			base := s.request(b, "http://127.0.0.1")
			base.RemoteAddr = "127.0.0.1:40000"
			runParallel(b, func() {
				w := httptest.NewRecorder()
				s.gw.ServeHTTP(w, base.Clone(base.Context()))
				if w.Code != http.StatusOK || w.Body.Len() != len(benchJSON) {
					b.Errorf("status %d, %d bytes", w.Code, w.Body.Len())
				}
			})
		})
	}
}
