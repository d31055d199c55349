// Command soak runs mixed browser traffic against one Gatehouse for a long
// time (logins, API calls, token refreshes, server-sent event streams,
// logouts, and sessions simply abandoned until they expire) and samples the
// gateway process's resident memory, heap, goroutines and open file
// descriptors, printing the curve.
//
// Run it from the repository root:
//
//	go run ./bench/cmd/soak [-d 30m] [-every 30s] [-browsers 32] [-store memory]
//
// See bench/README.md for what each figure means.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/benchkit"
)

type options struct {
	d, every, warm time.Duration
	browsers       int
	think          time.Duration // pause between one browser's API calls
	store          string
	idle           time.Duration // session idle timeout
	accessTTL      time.Duration
	life           time.Duration // longest signed-in period of one browser
}

func main() {
	benchkit.RunChildIfAsked()
	var o options
	flag.DurationVar(&o.d, "d", 30*time.Minute, "total duration")
	flag.DurationVar(&o.every, "every", 30*time.Second, "sampling interval")
	flag.DurationVar(&o.warm, "warmup", 0, "warm-up excluded from the flatness summary (default: a fifth of -d, at most 5m)")
	flag.IntVar(&o.browsers, "browsers", 32, "concurrent browsers")
	flag.DurationVar(&o.think, "think", 10*time.Millisecond, "pause between one browser's API calls")
	flag.StringVar(&o.store, "store", "memory", "session store: memory, bolt or redis")
	flag.DurationVar(&o.idle, "idle", 5*time.Minute, "session idle timeout (abandoned sessions expire after it)")
	flag.DurationVar(&o.accessTTL, "access-ttl", 90*time.Second, "access token lifetime (refresh happens a minute before expiry)")
	flag.DurationVar(&o.life, "life", 2*time.Minute, "longest time one browser stays signed in before it logs out or leaves")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// counters are the traffic totals so far.
type counters struct {
	api, sse, logins, logouts, abandoned, errors atomic.Int64
	firstErr                                     atomic.Value
}

func (c *counters) fail(err error) {
	c.errors.Add(1)
	c.firstErr.CompareAndSwap(nil, err.Error())
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.d <= 0 || o.every <= 0 || o.browsers < 1 || o.life <= 0 {
		return errors.New("-d, -every, -browsers and -life must be positive")
	}
	if o.warm == 0 {
		o.warm = min(o.d/5, 5*time.Minute)
	}
	kind, err := benchkit.StoreByName(o.store)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gatehouse-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := benchkit.StoreEnv{Dir: dir, RedisURL: benchkit.RedisURL(), RedisPrefix: benchkit.NewRedisPrefix()}
	if kind.Check != nil {
		if err := kind.Check(env); err != nil {
			return err
		}
	}
	if o.store == "redis" {
		defer benchkit.DropRedisPrefix(env.RedisURL, env.RedisPrefix)
	}
	up, err := benchkit.StartUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gwURL := "http://" + ln.Addr().String()
	op, err := benchkit.StartProvider(benchkit.ProviderOptions{
		RedirectURIs: []string{gwURL + "/bff/callback"}, PostLogoutRedirectURIs: []string{gwURL + "/"},
		AccessTokenTTL: o.accessTTL, IDTokenTTL: time.Hour,
	})
	if err != nil {
		return err
	}
	defer op.Close()
	gw, err := benchkit.StartChild(ctx, benchkit.ChildSpec{Role: benchkit.RoleGatehouse, Upstream: up.URL, Gateway: benchkit.GatewayOptions{
		Store: o.store, Env: env, Issuer: op.Issuer(), Upstream: up.URL, RateLimit: -1, Idle: o.idle, Absolute: 8 * time.Hour,
	}}, ln)
	if err != nil {
		return err
	}
	defer gw.Close()

	fmt.Fprintf(out, "soak: %d browsers against one gateway (%s store, pid %d) for %s, sampled every %s; idle timeout %s, access tokens live %s\n",
		o.browsers, o.store, gw.PID(), o.d, o.every, o.idle, o.accessTTL)
	fmt.Fprintf(out, "%8s %8s %8s %6s %5s %7s %8s %6s %7s %7s %7s %6s\n", "t", "rss MiB", "heap MiB", "gorout", "fds", "threads", "api/s", "sse", "logins", "logouts", "refresh", "errors")

	var c counters
	tctx, stopTraffic := context.WithTimeout(ctx, o.d)
	defer stopTraffic()
	var wg sync.WaitGroup
	for b := range o.browsers {
		wg.Go(func() { browse(tctx, o, gw, b, &c) })
	}

	type point struct {
		t      time.Duration
		rss    int64
		heap   uint64
		gor    int
		fds    int
		thread int
	}
	var points []point
	start := time.Now()
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	var lastAPI int64
	lastT := start
	sample := func(idle bool) error {
		ps, err := benchkit.SampleProc(gw.PID())
		if err != nil {
			return err
		}
		st, err := gw.Stats(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		api := c.api.Load()
		p := point{t: now.Sub(start), rss: ps.RSSKiB, heap: st.HeapAlloc, gor: st.Goroutines, fds: ps.FDs, thread: ps.Threads}
		if !idle {
			points = append(points, p)
		}
		ts := op.Watch.Stats(1)
		fmt.Fprintf(out, "%8s %8.1f %8.1f %6d %5d %7d %8.0f %6d %7d %7d %7d %6d\n", p.t.Round(time.Second), float64(p.rss)/1024, float64(p.heap)/(1<<20), p.gor, p.fds, p.thread,
			float64(api-lastAPI)/now.Sub(lastT).Seconds(), c.sse.Load(), c.logins.Load(), c.logouts.Load(), ts.RefreshGrants, c.errors.Load())
		if idle {
			fmt.Fprintln(out, "         (the line above: traffic stopped, keep-alive connections closed)")
		}
		lastAPI, lastT = api, now
		return nil
	}
	if err := sample(false); err != nil {
		return err
	}
loop:
	for {
		select {
		case <-tick.C:
			if err := sample(false); err != nil {
				return err
			}
		case <-tctx.Done():
			break loop
		}
	}
	wg.Wait()
	time.Sleep(time.Second) // let the gateway notice the closed connections
	if err := sample(true); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	ts := op.Watch.Stats(1)
	fmt.Fprintf(out, "\ntotals: %d API calls, %d event streams, %d logins, %d logouts, %d sessions abandoned, %d refresh grants (%d invalid_grant), %d errors\n",
		c.api.Load(), c.sse.Load(), c.logins.Load(), c.logouts.Load(), c.abandoned.Load(), ts.RefreshGrants, ts.InvalidGrant, c.errors.Load())
	var after []point
	for _, p := range points {
		if p.t >= o.warm {
			after = append(after, p)
		}
	}
	if len(after) >= 2 {
		first, last := after[0], after[len(after)-1]
		lo, hi := first, first
		for _, p := range after {
			lo.rss, hi.rss = min(lo.rss, p.rss), max(hi.rss, p.rss)
			lo.gor, hi.gor = min(lo.gor, p.gor), max(hi.gor, p.gor)
			lo.fds, hi.fds = min(lo.fds, p.fds), max(hi.fds, p.fds)
		}
		fmt.Fprintf(out, "after the %s warm-up (%d samples): RSS %.1f -> %.1f MiB (range %.1f-%.1f), goroutines %d -> %d (range %d-%d), fds %d -> %d (range %d-%d)\n",
			o.warm, len(after), float64(first.rss)/1024, float64(last.rss)/1024, float64(lo.rss)/1024, float64(hi.rss)/1024,
			first.gor, last.gor, lo.gor, hi.gor, first.fds, last.fds, lo.fds, hi.fds)
	} else {
		fmt.Fprintf(out, "too few samples after the %s warm-up for a flatness summary\n", o.warm)
	}
	if n := c.errors.Load(); n > 0 {
		return fmt.Errorf("%d requests failed; first: %v", n, c.firstErr.Load())
	}
	return nil
}

// browse is one browser slot: sign in, use the API (now and then an event
// stream) for a random time, then log out or just leave, and again.
func browse(ctx context.Context, o options, gw *benchkit.Child, n int, c *counters) {
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	rng := rand.New(rand.NewPCG(uint64(n), uint64(time.Now().UnixNano())))
	for ctx.Err() == nil {
		br, _ := benchkit.NewBrowser(gw.URL, gw.Cookie, tr)
		cookie, err := br.Login(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.fail(err)
				sleep(ctx, time.Second)
			}
			continue
		}
		c.logins.Add(1)
		until := time.Now().Add(time.Duration(rng.Int64N(int64(o.life))) + time.Second)
		for time.Now().Before(until) && ctx.Err() == nil {
			path, want := "/api/orders?page=2", len(benchkit.Body)
			sse := rng.IntN(200) == 0
			if sse {
				path, want = "/api/events?n=5&every=200ms", -1
			}
			req := benchkit.APIRequest(gw.URL, path, cookie).WithContext(ctx)
			resp, err := br.Client.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					c.fail(err)
				}
				continue
			}
			m, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case ctx.Err() != nil:
			case resp.StatusCode != http.StatusOK || (want >= 0 && m != int64(want)):
				c.fail(fmt.Errorf("%s: status %d, %d bytes", path, resp.StatusCode, m))
			case sse:
				c.sse.Add(1)
			default:
				c.api.Add(1)
			}
			sleep(ctx, o.think)
		}
		if ctx.Err() != nil {
			return
		}
		if rng.IntN(10) < 3 {
			c.abandoned.Add(1) // the tab is closed: the session expires by itself
			continue
		}
		if err := br.Logout(ctx); err != nil {
			if ctx.Err() == nil {
				c.fail(err)
			}
			continue
		}
		req := benchkit.APIRequest(gw.URL, "/bff/user", cookie).WithContext(ctx)
		if resp, err := br.Client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized && ctx.Err() == nil {
				c.fail(fmt.Errorf("after logout /bff/user answered %d, want 401", resp.StatusCode))
				continue
			}
		}
		c.logouts.Add(1)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
