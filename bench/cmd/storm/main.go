// Command storm signs in many sessions, makes all their access tokens
// expire in the same instant, and then sends every session several
// concurrent API calls. It counts, per session, the refresh grants the
// provider receives (exactly one is right), the invalid_grant answers, and
// the calls' latency: with one replica, and with two replicas sharing
// Redis, each session's calls split across both.
//
// Run it from the repository root:
//
//	go run ./bench/cmd/storm [-sessions 10000] [-calls 4] [-c 256] [-replicas 0|1|2] [-store memory]
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/internal/benchkit"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
)

type options struct {
	sessions  int
	calls     int // concurrent calls per session
	conns     int // requests in flight at once
	loginC    int
	replicas  int    // 0: one replica on store, then two on Redis
	store     string // the single replica's store
	accessTTL time.Duration
	logPath   string // the gateways' log; "" discards it
}

func main() {
	benchkit.RunChildIfAsked()
	var o options
	flag.IntVar(&o.sessions, "sessions", 10_000, "signed-in sessions")
	flag.IntVar(&o.calls, "calls", 4, "concurrent API calls per session once the tokens expired")
	flag.IntVar(&o.conns, "c", 256, "API calls in flight at once (connections)")
	flag.IntVar(&o.loginC, "login-c", 16, "concurrent logins while signing the sessions in")
	flag.IntVar(&o.replicas, "replicas", 0, "1: one replica on -store; 2: two replicas on Redis; 0: both, one after the other")
	flag.StringVar(&o.store, "store", "memory", "session store of the single replica")
	flag.StringVar(&o.logPath, "log", "", "append the gateways' logs (text, info level) to this file")
	flag.Parse()
	o.accessTTL = time.Hour
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.sessions < 1 || o.calls < 1 || o.conns < o.calls || o.loginC < 1 {
		return errors.New("-sessions, -calls, -login-c must be positive and -c at least -calls")
	}
	type setup struct {
		replicas int
		store    string
	}
	var setups []setup
	switch o.replicas {
	case 0:
		setups = []setup{{1, o.store}, {2, "redis"}}
	case 1:
		setups = []setup{{1, o.store}}
	case 2:
		setups = []setup{{2, "redis"}}
	default:
		return errors.New("-replicas must be 0, 1 or 2")
	}
	var failed error
	for _, s := range setups {
		if err := storm(ctx, o, s.replicas, s.store, out); err != nil {
			if errors.Is(err, errSkip) {
				continue
			}
			fmt.Fprintf(out, "FAILED: %v\n", err)
			failed = errors.Join(failed, err)
		}
	}
	return failed
}

var errSkip = errors.New("skipped")

// clock is the gateways' clock: the wall clock plus an offset that the
// storm moves forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func storm(ctx context.Context, o options, replicas int, store string, out io.Writer) error {
	kind, err := benchkit.StoreByName(store)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gatehouse-storm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := benchkit.StoreEnv{Dir: dir, RedisURL: benchkit.RedisURL(), RedisPrefix: benchkit.NewRedisPrefix()}
	if kind.Check != nil {
		if err := kind.Check(env); err != nil {
			fmt.Fprintf(out, "SKIPPING %d replica(s) on %s: %v\n", replicas, store, err)
			return errSkip
		}
	}
	if store == "redis" {
		defer benchkit.DropRedisPrefix(env.RedisURL, env.RedisPrefix)
	}
	if replicas > 1 && store != "redis" {
		return errors.New("several replicas need a shared store (redis)")
	}
	fmt.Fprintf(out, "\n== %d replica(s), %s store: %d sessions, %d concurrent calls each, %d in flight\n", replicas, store, o.sessions, o.calls, o.conns)

	up, err := benchkit.StartUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	lns := make([]net.Listener, replicas)
	var callbacks []string
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		callbacks = append(callbacks, "http://"+lns[i].Addr().String()+"/bff/callback")
	}
	op, err := benchkit.StartProvider(benchkit.ProviderOptions{RedirectURIs: callbacks, AccessTokenTTL: o.accessTTL})
	if err != nil {
		return err
	}
	defer op.Close()
	key, err := seal.GenerateKey("storm")
	if err != nil {
		return err
	}
	var logw io.Writer
	if o.logPath != "" {
		f, err := os.OpenFile(o.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	var clk clock
	gws := make([]*benchkit.Gateway, replicas)
	for i := range gws {
		g, err := benchkit.StartGateway(benchkit.GatewayOptions{Store: store, Env: env, Key: key, Issuer: op.Issuer(), Upstream: up.URL, RateLimit: -1},
			lns[i], logw, gatehouse.WithClock(clk.Now))
		if err != nil {
			return err
		}
		defer g.Close()
		gws[i] = g
	}
	skew := gws[0].Config.OIDC.RefreshSkew

	// Sign every session in, spread over the replicas.
	cookies := make([]string, o.sessions)
	t0 := time.Now()
	var next atomic.Int64
	var lerr error
	var lmu sync.Mutex
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: o.loginC}
	for range o.loginC {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= o.sessions {
					return
				}
				g := gws[i%replicas]
				br, _ := benchkit.NewBrowser(g.URL, g.CookieName, tr)
				c, err := br.Login(ctx)
				if err != nil {
					lmu.Lock()
					lerr = err
					lmu.Unlock()
					return
				}
				cookies[i] = c
			}
		})
	}
	wg.Wait()
	tr.CloseIdleConnections()
	if lerr != nil {
		return lerr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	lastLogin := time.Now()
	fmt.Fprintf(out, "signed in %d sessions in %s (%.0f logins/s)\n", o.sessions, lastLogin.Sub(t0).Round(time.Millisecond), float64(o.sessions)/lastLogin.Sub(t0).Seconds())
	if st := op.Watch.Stats(2); st.RefreshGrants != 0 || st.CodeGrants != o.sessions {
		return fmt.Errorf("before the storm: %d code grants (want %d), %d refresh grants (want 0)", st.CodeGrants, o.sessions, st.RefreshGrants)
	}

	// Move the gateways' clock so that every access token, the last one
	// issued included, is due for refresh in the same instant; tokens
	// refreshed from now on carry the same lead, so each session needs
	// exactly one refresh.
	jump := time.Until(lastLogin) + o.accessTTL - skew + time.Second
	op.Watch.ExtendRefreshExpiry(jump + time.Hour)
	clk.offset.Store(int64(jump))
	fmt.Fprintf(out, "every access token is now due for refresh (gateway clock moved %s forward)\n", jump.Round(time.Second))

	// The storm: each session's calls go out together, split across the
	// replicas.
	client := benchkit.NewClient(o.conns)
	defer client.CloseIdleConnections()
	sessions := make(chan int)
	var (
		mu     sync.Mutex
		lat    benchkit.Hist
		status = map[int]int{}
		errs   int
	)
	stormStart := time.Now()
	for range o.conns / o.calls {
		wg.Go(func() {
			var h benchkit.Hist
			local := map[int]int{}
			var localErrs int
			for i := range sessions {
				var cw sync.WaitGroup
				var cmu sync.Mutex
				for j := range o.calls {
					cw.Go(func() {
						g := gws[(i+j)%replicas]
						req := benchkit.APIRequest(g.URL, "/api/orders?page=2", cookies[i]).WithContext(ctx)
						t := time.Now()
						resp, err := client.Do(req)
						if err != nil {
							cmu.Lock()
							localErrs++
							cmu.Unlock()
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						d := time.Since(t)
						cmu.Lock()
						h.Record(d)
						local[resp.StatusCode]++
						cmu.Unlock()
					})
				}
				cw.Wait()
			}
			mu.Lock()
			lat.Merge(&h)
			for k, v := range local {
				status[k] += v
			}
			errs += localErrs
			mu.Unlock()
		})
	}
	for i := range o.sessions {
		select {
		case sessions <- i:
		case <-ctx.Done():
		}
	}
	close(sessions)
	wg.Wait()
	took := time.Since(stormStart)

	st := op.Watch.Stats(3)
	fmt.Fprintf(out, "storm: %d calls in %s, p50 %s  p99 %s  max %s; answers %v, %d transport errors\n",
		lat.Count(), took.Round(time.Millisecond), ms(lat.Quantile(0.5)), ms(lat.Quantile(0.99)), ms(lat.Max()), status, errs)
	fmt.Fprintf(out, "provider: %d refresh grants for %d sessions (%.0f/s); sessions with 0 / 1 / 2 / 3+ refreshes: %d / %d / %d / %d; refresh errors %d, invalid_grant %d, unknown refresh tokens %d\n",
		st.RefreshGrants, o.sessions, float64(st.RefreshGrants)/took.Seconds(), st.PerFamily[0], st.PerFamily[1], st.PerFamily[2], st.PerFamily[3], st.RefreshErrors, st.InvalidGrant, st.UnknownFamily)
	var problems []error
	if st.PerFamily[1] != o.sessions {
		problems = append(problems, fmt.Errorf("%d of %d sessions did not get exactly one refresh", o.sessions-st.PerFamily[1], o.sessions))
	}
	if st.InvalidGrant > 0 || st.RefreshErrors > 0 || st.UnknownFamily > 0 {
		problems = append(problems, fmt.Errorf("%d refresh errors, %d invalid_grant, %d unknown tokens", st.RefreshErrors, st.InvalidGrant, st.UnknownFamily))
	}
	if status[http.StatusOK] != o.sessions*o.calls || errs > 0 {
		problems = append(problems, fmt.Errorf("%d of %d calls answered 200", status[http.StatusOK], o.sessions*o.calls))
	}
	if len(problems) == 0 {
		fmt.Fprintln(out, "OK: exactly one refresh per session, no invalid_grant, every call answered 200")
	}
	return errors.Join(problems...)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }
