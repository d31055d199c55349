// Command compare measures Gatehouse against a bare pooled
// httputil.ReverseProxy on the same machine: an authenticated SPA API GET
// (session cookie and X-CSRF: 1), through each session store, in
// interleaved rounds, and prints requests per second, the ratio to the
// bare proxy, p50 and p99 latency and allocations per request.
//
// Run it from the repository root:
//
//	go run ./bench/cmd/compare [-rounds 3] [-d 10s] [-c 64] [-driver inproc|wrk|both] [-profile DIR]
//
// See bench/README.md for what each figure means.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/benchkit"
)

type options struct {
	rounds     int
	d, warm    time.Duration
	conns      int
	threads    int
	driver     string // inproc, wrk or both
	stores     []string
	profileDir string
}

func main() {
	benchkit.RunChildIfAsked()
	var o options
	var stores string
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds (the table shows medians)")
	flag.DurationVar(&o.d, "d", 10*time.Second, "measured duration per target and round")
	flag.DurationVar(&o.warm, "warmup", 2*time.Second, "unmeasured warm-up before each measurement")
	flag.IntVar(&o.conns, "c", 64, "keep-alive connections")
	flag.IntVar(&o.threads, "t", 2, "wrk threads")
	flag.StringVar(&o.driver, "driver", "inproc", "load generator: inproc, wrk or both")
	flag.StringVar(&stores, "stores", "", "comma-separated stores (default: every store whose backend answers)")
	flag.StringVar(&o.profileDir, "profile", "", "after the rounds, write CPU and allocation profiles of each target to this directory")
	flag.Parse()
	if stores != "" {
		o.stores = strings.Split(stores, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// target is one proxy under test, served by a child process.
type target struct {
	name   string
	child  *benchkit.Child
	cookie string
}

// sample is one measurement of one target by one driver.
type sample struct {
	rps, allocs float64
	p50, p99    time.Duration
	errors      int64
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.rounds < 1 || o.d < time.Second || o.conns < 1 || o.conns > 4096 {
		return errors.New("-rounds must be >= 1, -d >= 1s, -c in 1..4096")
	}
	drivers := map[string][]string{"inproc": {"inproc"}, "wrk": {"wrk"}, "both": {"inproc", "wrk"}}[o.driver]
	if drivers == nil {
		return fmt.Errorf("-driver %q: want inproc, wrk or both", o.driver)
	}
	if slices.Contains(drivers, "wrk") && !benchkit.HaveWrk() {
		if o.driver == "wrk" {
			return errors.New("-driver wrk: wrk is not installed (apt-get install wrk)")
		}
		fmt.Fprintln(out, "NOTE: wrk is not installed (apt-get install wrk): measuring with the in-process driver only")
		drivers = []string{"inproc"}
	}
	dir, err := os.MkdirTemp("", "gatehouse-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := benchkit.StoreEnv{Dir: dir, RedisURL: benchkit.RedisURL(), RedisPrefix: benchkit.NewRedisPrefix()}

	var kinds []benchkit.StoreKind
	if o.stores == nil {
		kinds = benchkit.Stores
	} else {
		for _, n := range o.stores {
			k, err := benchkit.StoreByName(n)
			if err != nil {
				return err
			}
			kinds = append(kinds, k)
		}
	}
	var usable []benchkit.StoreKind
	for _, k := range kinds {
		if k.Check != nil {
			if err := k.Check(env); err != nil {
				fmt.Fprintf(out, "SKIPPING store %s: %v\n", k.Name, err)
				continue
			}
		}
		usable = append(usable, k)
	}
	defer func() {
		for _, k := range usable {
			if k.Name == "redis" {
				benchkit.DropRedisPrefix(env.RedisURL, env.RedisPrefix)
			}
		}
	}()

	up, err := benchkit.StartUpstream()
	if err != nil {
		return err
	}
	defer up.Close()

	// Listeners first: the provider must know every callback URL.
	lns := make([]net.Listener, len(usable))
	var callbacks []string
	for i := range usable {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		callbacks = append(callbacks, "http://"+lns[i].Addr().String()+"/bff/callback")
	}
	op, err := benchkit.StartProvider(benchkit.ProviderOptions{RedirectURIs: callbacks})
	if err != nil {
		return err
	}
	defer op.Close()

	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bare, err := benchkit.StartChild(ctx, benchkit.ChildSpec{Role: benchkit.RoleBare, Upstream: up.URL}, bareLn)
	if err != nil {
		return err
	}
	defer bare.Close()
	targets := []*target{{name: "bare", child: bare}}
	for i, k := range usable {
		c, err := benchkit.StartChild(ctx, benchkit.ChildSpec{Role: benchkit.RoleGatehouse, Upstream: up.URL, Gateway: benchkit.GatewayOptions{
			Store: k.Name, Env: env, Issuer: op.Issuer(), Upstream: up.URL,
		}}, lns[i])
		if err != nil {
			return fmt.Errorf("gatehouse %s: %w", k.Name, err)
		}
		defer c.Close()
		b, err := benchkit.NewBrowser(c.URL, c.Cookie, nil)
		if err != nil {
			return err
		}
		cookie, err := b.Login(ctx)
		if err != nil {
			return fmt.Errorf("gatehouse %s: %w", k.Name, err)
		}
		targets = append(targets, &target{name: "gatehouse-" + k.Name, child: c, cookie: cookie})
	}
	if len(targets) == 1 {
		return errors.New("no session store can be measured")
	}
	bare.Cookie = targets[1].cookie
	targets[0].cookie = targets[1].cookie
	if err := matchHeaders(ctx, up, targets[0], targets[1], out); err != nil {
		return err
	}

	fmt.Fprintf(out, "\nGET /api/orders?page=2 (%d-byte JSON), %d connections, %d round(s) of %s (+%s warm-up) per target, interleaved; GOMAXPROCS=%d, %d CPUs shared by load generator, upstream, provider, Redis and proxies\n",
		len(benchkit.Body), o.conns, o.rounds, o.d, o.warm, runtime.GOMAXPROCS(0), runtime.NumCPU())
	results := map[string]map[string][]sample{} // driver -> target -> rounds
	for _, drv := range drivers {
		results[drv] = map[string][]sample{}
	}
	for r := range o.rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)] // rotate the order each round
			for _, drv := range drivers {
				s, err := measure(ctx, o, drv, t, o.d, nil)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", r+1, t.name, drv, err)
				}
				results[drv][t.name] = append(results[drv][t.name], s)
				fmt.Fprintf(out, "  round %d %-6s %-18s %9.0f req/s  p50 %8s  p99 %8s  %6.1f allocs/req  %d errors\n",
					r+1, drv, t.name, s.rps, us(s.p50), us(s.p99), s.allocs, s.errors)
			}
		}
	}
	var failed bool
	for _, drv := range drivers {
		fmt.Fprintf(out, "\ndriver %s (medians of %d rounds; vs bare: median of the per-round ratios):\n\n", drv, o.rounds)
		fmt.Fprintf(out, "| %-18s | %9s | %8s | %15s | %9s | %9s | %10s |\n", "target", "req/s", "vs bare", "per-round range", "p50", "p99", "allocs/req")
		fmt.Fprintf(out, "|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 20), strings.Repeat("-", 11), strings.Repeat("-", 10), strings.Repeat("-", 17), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 12))
		bareRounds := results[drv]["bare"]
		base := medianOf(bareRounds)
		for _, t := range targets {
			rounds := results[drv][t.name]
			m := medianOf(rounds)
			// The ratio is taken within each round, then the median: a
			// round slowed by other work on the machine slows every
			// target of that round alike.
			ratios := make([]float64, len(rounds))
			for i, s := range rounds {
				ratios[i] = s.rps / bareRounds[i].rps
			}
			fmt.Fprintf(out, "| %-18s | %9.0f | %7.2fx | %6.2fx-%6.2fx | %9s | %9s | %10.1f |\n", t.name, m.rps, benchkit.Median(ratios), slices.Min(ratios), slices.Max(ratios), ms(m.p50), ms(m.p99), m.allocs)
			if m.errors > 0 {
				failed = true
			}
		}
		fmt.Fprintf(out, "\nallocs/req over bare: ")
		for _, t := range targets[1:] {
			fmt.Fprintf(out, "%s %+.1f  ", t.name, medianOf(results[drv][t.name]).allocs-base.allocs)
		}
		fmt.Fprintln(out)
	}

	if o.profileDir != "" {
		if err := profile(ctx, o, drivers[0], targets, out); err != nil {
			return err
		}
	}
	if failed {
		return errors.New("some requests failed (see the errors column above)")
	}
	return nil
}

// matchHeaders makes the bare proxy send the upstream the same request
// headers Gatehouse sends (the access token, a request id; not the session
// cookie nor the anti-forgery header), with values of the same length.
func matchHeaders(ctx context.Context, up *benchkit.Upstream, bare, gw *target, out io.Writer) error {
	capture := func(t *target) (http.Header, error) {
		req := benchkit.APIRequest(t.child.URL, "/api/orders?page=2", gw.cookie).WithContext(ctx)
		req.Header.Set(benchkit.CaptureHeader, "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: capture request: status %d", t.name, resp.StatusCode)
		}
		h := up.Captured()
		h.Del(benchkit.CaptureHeader)
		return h, nil
	}
	bh, err := capture(bare)
	if err != nil {
		return err
	}
	gh, err := capture(gw)
	if err != nil {
		return err
	}
	set := map[string]string{}
	var del, notes []string
	for k, v := range gh {
		if k == "X-Forwarded-For" || k == "X-Forwarded-Host" || k == "X-Forwarded-Proto" {
			continue // both set these from the request
		}
		if bv, ok := bh[k]; !ok || len(strings.Join(bv, ",")) != len(strings.Join(v, ",")) {
			val := strings.Join(v, ",")
			filler := val
			if p, _, ok := strings.Cut(val, " "); ok && (p == "Bearer" || p == "DPoP") {
				filler = p + " " + strings.Repeat("x", len(val)-len(p)-1)
			} else if k == "Authorization" {
				filler = strings.Repeat("x", len(val))
			}
			set[k] = filler
			notes = append(notes, fmt.Sprintf("sets %s (%d bytes)", k, len(val)))
		}
	}
	for k := range bh {
		if _, ok := gh[k]; !ok {
			del = append(del, k)
			notes = append(notes, "removes "+k)
		}
	}
	slices.Sort(notes)
	fmt.Fprintf(out, "bare proxy matches Gatehouse's upstream headers: %s\n", strings.Join(notes, ", "))
	return bare.child.SetBareHeaders(ctx, set, del)
}

// measure warms t up, then measures it for d with drv, reading the
// child's allocation counters around the measured window. During, when
// set, runs alongside the measurement.
func measure(ctx context.Context, o options, drv string, t *target, d time.Duration, during func()) (sample, error) {
	req := benchkit.APIRequest(t.child.URL, "/api/orders?page=2", t.cookie)
	var s sample
	if drv == "wrk" {
		headers := map[string]string{"Cookie": t.cookie, "X-CSRF": "1", "Accept": "application/json"}
		if o.warm >= time.Second {
			if _, err := benchkit.RunWrk(ctx, req.URL.String(), headers, o.threads, o.conns, o.warm); err != nil {
				return s, err
			}
		}
		st0, err := t.child.Stats(ctx)
		if err != nil {
			return s, err
		}
		var wg sync.WaitGroup
		if during != nil {
			wg.Go(during)
		}
		w, err := benchkit.RunWrk(ctx, req.URL.String(), headers, o.threads, o.conns, d)
		if err != nil {
			return s, err
		}
		st1, err := t.child.Stats(ctx)
		if err != nil {
			return s, err
		}
		wg.Wait()
		s = sample{rps: w.RPS, p50: w.P50, p99: w.P99, errors: w.Errors, allocs: allocsPer(st0, st1)}
		return s, nil
	}
	client := benchkit.NewClient(o.conns)
	defer client.CloseIdleConnections()
	if o.warm > 0 {
		benchkit.Drive(ctx, client, req, o.conns, 0, o.warm, len(benchkit.Body), nil)
	}
	st0, err := t.child.Stats(ctx)
	if err != nil {
		return s, err
	}
	var wg sync.WaitGroup
	if during != nil {
		wg.Go(during)
	}
	r := benchkit.Drive(ctx, client, req, o.conns, 0, d, len(benchkit.Body), nil)
	st1, err := t.child.Stats(ctx)
	if err != nil {
		return s, err
	}
	wg.Wait()
	if r.FirstErr != "" {
		fmt.Fprintf(os.Stderr, "compare: %s: first error: %s\n", t.name, r.FirstErr)
	}
	return sample{rps: r.RPS(), p50: r.Lat.Quantile(0.5), p99: r.Lat.Quantile(0.99), errors: r.Errors, allocs: allocsPer(st0, st1)}, nil
}

func allocsPer(a, b benchkit.ChildStats) float64 {
	if b.Requests <= a.Requests {
		return 0
	}
	return float64(b.Mallocs-a.Mallocs) / float64(b.Requests-a.Requests)
}

// profile measures each target once more while its CPU and allocation
// profiles are taken, and writes them to o.profileDir.
func profile(ctx context.Context, o options, drv string, targets []*target, out io.Writer) error {
	if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nprofiles (%s each, driver %s):\n", o.d, drv)
	for _, t := range targets {
		cpu := filepath.Join(o.profileDir, t.name+".cpu.pprof")
		allocs := filepath.Join(o.profileDir, t.name+".allocs.pprof")
		var perr error
		var mu sync.Mutex
		during := func() {
			var wg sync.WaitGroup
			for kind, path := range map[string]string{"profile": cpu, "allocs": allocs} {
				wg.Go(func() {
					if err := t.child.Profile(ctx, kind, o.d-time.Second, path); err != nil {
						mu.Lock()
						perr = errors.Join(perr, err)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
		}
		s, err := measure(ctx, o, drv, t, o.d, during)
		if err != nil {
			return err
		}
		if perr != nil {
			return perr
		}
		fmt.Fprintf(out, "  %-18s %9.0f req/s while profiled: go tool pprof -top %s; go tool pprof -top -sample_index=alloc_space %s\n", t.name, s.rps, cpu, allocs)
	}
	return nil
}

func medianOf(ss []sample) sample {
	pick := func(f func(sample) float64) float64 {
		xs := make([]float64, len(ss))
		for i, s := range ss {
			xs[i] = f(s)
		}
		return benchkit.Median(xs)
	}
	var errs int64
	for _, s := range ss {
		errs += s.errors
	}
	return sample{
		rps:    pick(func(s sample) float64 { return s.rps }),
		allocs: pick(func(s sample) float64 { return s.allocs }),
		p50:    time.Duration(pick(func(s sample) float64 { return float64(s.p50) })),
		p99:    time.Duration(pick(func(s sample) float64 { return float64(s.p99) })),
		errors: errs,
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
