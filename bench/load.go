//go:build ignore

// Command load drives an authenticated API GET through Gatehouse and through
// a bare httputil.ReverseProxy (same upstream, same upstream transport),
// each with N concurrent loopback clients for a fixed duration, and prints
// requests per second, p50 and p99 latency and the Gatehouse/bare ratios.
//
// Run it from the repository root:
//
//	go run bench/load.go [-c 32] [-d 5s] [-warmup 1s]
//
// Everything runs in this process on 127.0.0.1: the upstream, the
// development OpenID provider that signs the benchmark user in, the gateway
// and the bare proxy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
)

const (
	clientID     = "gatehouse-load"
	clientSecret = "load-client-secret-0123456789-abcdefghij"
)

// body is the upstream's answer: about 200 bytes of JSON.
var body = `{"orders":[` + strings.Repeat(`{"id":1234,"total":"19.90","state":"paid"},`, 4) + `{"id":1235,"total":"5.00","state":"open"}],"page":2}`

func main() {
	clients := flag.Int("c", 32, "concurrent clients (1-1024)")
	dur := flag.Duration("d", 5*time.Second, "measured duration per target (at most 60s)")
	warm := flag.Duration("warmup", time.Second, "unmeasured warm-up per target (at most 10s)")
	flag.Parse()
	if *clients < 1 || *clients > 1024 || *dur <= 0 || *dur > time.Minute || *warm < 0 || *warm > 10*time.Second {
		log.Fatal("load: -c must be 1-1024, -d in (0, 60s], -warmup in [0, 10s]")
	}
	slog.SetDefault(slog.New(slog.DiscardHandler)) // quiet the provider

	gwURL, bareURL, cookie, stop, err := start()
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	fmt.Printf("GET /api/orders, %d-byte JSON upstream, %d clients, %s per target (+%s warm-up), GOMAXPROCS=%d\n\n",
		len(body), *clients, *dur, *warm, runtime.GOMAXPROCS(0))
	gw := drive("gatehouse", gwURL, cookie, *clients, *warm, *dur)
	bare := drive("bare", bareURL, cookie, *clients, *warm, *dur)
	fmt.Printf("%-10s %10s %9s %9s %8s\n", "target", "req/s", "p50", "p99", "errors")
	for _, r := range []result{gw, bare} {
		fmt.Printf("%-10s %10.0f %9s %9s %8d\n", r.name, r.rps, us(r.p50), us(r.p99), r.errors)
	}
	fmt.Printf("\ngatehouse/bare: throughput %.2fx, p50 %+.0fµs, p99 %+.0fµs\n",
		gw.rps/bare.rps, float64(gw.p50-bare.p50)/1e3, float64(gw.p99-bare.p99)/1e3)
	if gw.errors+bare.errors > 0 {
		os.Exit(1)
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }

// start runs the upstream, the provider, a signed-in gateway and the bare
// proxy, and returns the two proxies' URLs, the session Cookie header value
// and a function that stops everything.
func start() (gwURL, bareURL, cookie string, stop func(), err error) {
	var closers []func()
	stop = func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	closers = append(closers, api.Close)

	gwSrv := httptest.NewUnstartedServer(nil)
	closers = append(closers, gwSrv.Close)
	gwURL = "http://" + gwSrv.Listener.Addr().String()

	opSrv := httptest.NewUnstartedServer(nil)
	closers = append(closers, opSrv.Close)
	op, err := devprovider.New(devprovider.Options{
		Issuer: "http://" + opSrv.Listener.Addr().String(),
		// Long lifetimes: no token refresh happens during a run.
		AccessTokenTTL: 24 * time.Hour,
		IDTokenTTL:     24 * time.Hour,
		Clients:        []devprovider.Client{{ID: clientID, Secret: clientSecret, RedirectURIs: []string{gwURL + "/bff/callback"}}},
		AutoLogin:      "alice",
	})
	if err != nil {
		return "", "", "", nil, fmt.Errorf("load: provider: %w", err)
	}
	opSrv.Config.Handler = op
	opSrv.Start()

	cfg := &config.Config{
		Server:  config.Server{PublicURL: gwURL},
		OIDC:    config.OIDC{Issuer: op.Issuer(), ClientID: clientID, ClientSecret: clientSecret},
		Session: config.Session{Store: "memory", IdleTimeout: 24 * time.Hour, AbsoluteTimeout: 48 * time.Hour},
		Routes:  []config.Route{{Prefix: "/api/", Upstream: api.URL}},
	}
	cfg.SetDefaults()
	gw, err := gatehouse.New(cfg)
	if err != nil {
		return "", "", "", nil, fmt.Errorf("load: %w", err)
	}
	closers = append(closers, func() { gw.Close() })
	gwSrv.Config.Handler = gw
	gwSrv.Start()

	if cookie, err = login(gwURL, cfg.Session.CookieName); err != nil {
		return "", "", "", nil, err
	}

	target, _ := url.Parse(api.URL)
	bare := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport: proxy.NewTransport(),
	})
	closers = append(closers, bare.Close)
	return gwURL, bare.URL, cookie, stop, nil
}

// secureJar keeps cookies for http URLs as if they were https, so the
// gateway's Secure __Host- cookies travel over the plain-http loopback.
type secureJar struct{ http.CookieJar }

func asHTTPS(u *url.URL) *url.URL {
	c := *u
	c.Scheme = "https"
	return &c
}

func (j secureJar) SetCookies(u *url.URL, cs []*http.Cookie) { j.CookieJar.SetCookies(asHTTPS(u), cs) }
func (j secureJar) Cookies(u *url.URL) []*http.Cookie        { return j.CookieJar.Cookies(asHTTPS(u)) }

// login signs alice in through the provider and returns "name=value" for
// the session cookie.
func login(gwURL, name string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: secureJar{jar}, Timeout: 30 * time.Second}
	resp, err := c.Get(gwURL + "/bff/login?returnUrl=%2F")
	if err != nil {
		return "", fmt.Errorf("load: login: %w", err)
	}
	resp.Body.Close()
	u, _ := url.Parse(gwURL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", errors.New("load: login set no session cookie")
}

type result struct {
	name     string
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

// drive sends GETs from n clients for warm+d and measures the last d.
func drive(name, base, cookie string, n int, warm, d time.Duration) result {
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", base+"/api/orders?page=2", nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Accept", "application/json")

	begin := time.Now().Add(warm)
	ctx, cancel := context.WithDeadline(context.Background(), begin.Add(d))
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		all    []time.Duration
		errs   atomic.Int64
		header sync.Once
	)
	for range n {
		wg.Go(func() {
			var local []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Do(req.Clone(ctx))
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						header.Do(func() { log.Printf("load: %s: %v", name, err) })
					}
					continue
				}
				m, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				t1 := time.Now()
				if resp.StatusCode != http.StatusOK || m != int64(len(body)) {
					errs.Add(1)
					header.Do(func() { log.Printf("load: %s: status %d, %d bytes", name, resp.StatusCode, m) })
					continue
				}
				if t0.After(begin) && ctx.Err() == nil {
					local = append(local, t1.Sub(t0))
				}
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := result{name: name, errors: errs.Load(), rps: float64(len(all)) / d.Seconds()}
	if len(all) > 0 {
		slices.Sort(all)
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	return r
}
