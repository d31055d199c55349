// Command million fills one session store with N sealed sessions of
// realistic size through Gatehouse's own session manager and sealing, and
// measures what a million sessions cost: session lookup latency on the
// request path with all N present, space per session against the sealed
// record size, the sweep of expired sessions while requests run, bolt's
// restart-to-serving time on the full file, and logins per second.
//
// Run it from the repository root:
//
//	go run ./bench/cmd/million -store memory|bolt|redis [-n 1000000] [-expired 100000]
//
// See bench/README.md for what each figure means.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/benchkit"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

type options struct {
	store       string
	n, expired  int
	conns       int // fill and sweep-phase request concurrency
	sample      int // cookies kept for lookups
	dir         string
	loginsFor   time.Duration
	loginConns  int
	sweepWindow time.Duration
	sweepMargin time.Duration // from the end of the writes (estimated) to the expiry instant
	sweepEvery  time.Duration // the store's own sweep interval
}

func main() {
	benchkit.RunChildIfAsked()
	var o options
	flag.StringVar(&o.store, "store", "memory", "session store: memory, bolt, redis or postgres")
	flag.IntVar(&o.n, "n", 1_000_000, "live sessions to fill the store with")
	flag.IntVar(&o.expired, "expired", -1, "extra sessions that expire together, then are swept while requests run (default min(100000, n/10))")
	flag.IntVar(&o.conns, "c", 16, "concurrent writers during the fill, and concurrent lookups during the sweep")
	flag.IntVar(&o.sample, "sample", 10_000, "session cookies kept for the lookup measurements")
	flag.StringVar(&o.dir, "dir", "", "directory for the bolt file (default: a temporary directory, removed afterwards)")
	flag.DurationVar(&o.loginsFor, "logins", 5*time.Second, "duration of the full login flow measurement (0: skip)")
	flag.IntVar(&o.loginConns, "login-c", 8, "concurrent browsers during the login measurement")
	flag.DurationVar(&o.sweepWindow, "sweep-window", 0, "how long to measure requests around the sweep (default: long enough for the store's sweep)")
	flag.DurationVar(&o.sweepMargin, "sweep-margin", 10*time.Second, "time from the (estimated) end of writing the expiring sessions to their expiry")
	flag.DurationVar(&o.sweepEvery, "sweep-every", time.Minute, "the store's sweep interval (memory, bolt; Gatehouse's default is 1m)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		os.Exit(1)
	}
}

// fakeIssuer is the issuer the filled sessions name. Nothing listens
// there: serving an existing session does not call the provider.
const fakeIssuer = "http://127.0.0.1:9"

func run(ctx context.Context, o options, out io.Writer) error {
	if o.expired < 0 {
		o.expired = min(100_000, o.n/10)
	}
	open, ok := openers[o.store]
	if !ok {
		return fmt.Errorf("-store %q: want one of memory, bolt, redis, postgres", o.store)
	}
	if o.n < 1 || o.conns < 1 || o.sample < 1 {
		return errors.New("-n, -c and -sample must be positive")
	}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "gatehouse-million-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	env := storeEnv{boltPath: filepath.Join(dir, "million.db"), redisURL: benchkit.RedisURL(), redisPrefix: benchkit.NewRedisPrefix(),
		postgresDSN: benchkit.PostgresDSN(), postgresPrefix: fmt.Sprintf("million_%d_", time.Now().UnixNano()%1e9), sweepEvery: o.sweepEvery}
	if o.store == "redis" {
		defer benchkit.DropRedisPrefix(env.redisURL, env.redisPrefix)
	}
	key, err := seal.GenerateKey("bench")
	if err != nil {
		return err
	}
	ring, err := sessionRing(key)
	if err != nil {
		return err
	}
	b, err := open(env)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			b.close()
		}
	}()
	st := &sizing{Store: b.store}
	// As in the gateway, slides are written by a Toucher alongside the
	// request's work, and the request waits for the write before it ends.
	touch := session.NewToucher(nil)
	defer touch.Wait()
	mgr, err := session.NewManager(session.Options{Store: st, Ring: ring, CookieName: "__Host-gatehouse", IdleTimeout: 24 * time.Hour, AbsoluteTimeout: 48 * time.Hour, Toucher: touch})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "store %s, %d live sessions + %d that expire together\n", o.store, o.n, o.expired)

	// Fill.
	space0, err := b.space(ctx)
	if err != nil {
		return err
	}
	sample := make([]string, 0, o.sample)
	var sampleMu sync.Mutex
	every := max(o.n/o.sample, 1)
	fill := func(m *session.Manager, n int, keep bool) (time.Duration, error) {
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		var ferr error
		var errOnce sync.Once
		report := max(n/10, 1)
		for range o.conns {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					id, err := m.Create(ctx, newSession(i))
					if err != nil {
						errOnce.Do(func() { ferr = err })
						return
					}
					if keep && i%every == 0 {
						sampleMu.Lock()
						if len(sample) < o.sample {
							sample = append(sample, id)
						}
						sampleMu.Unlock()
					}
					if (i+1)%report == 0 {
						el := time.Since(start)
						fmt.Fprintf(out, "  filled %d/%d in %s (%.0f/s)\n", i+1, n, el.Round(time.Second), float64(i+1)/el.Seconds())
					}
				}
			})
		}
		wg.Wait()
		if ferr == nil {
			ferr = ctx.Err()
		}
		return time.Since(start), ferr
	}
	fillTime, err := fill(mgr, o.n, true)
	if err != nil {
		return err
	}
	createRate := float64(o.n) / fillTime.Seconds()
	space1, err := b.space(ctx)
	if err != nil {
		return err
	}
	sealed := float64(st.bytes.Load()) / float64(st.n.Load())
	per := float64(space1-space0) / float64(o.n)
	fmt.Fprintf(out, "\nfill: %d sessions in %s: %.0f session creates/s (Manager.Create, %d writers)\n", o.n, fillTime.Round(time.Millisecond), createRate, o.conns)
	fmt.Fprintf(out, "sealed record: %.0f bytes on average (Record.Data)\n", sealed)
	fmt.Fprintf(out, "space: %.0f bytes per session (%s: %d -> %d), %.2fx the sealed record\n", per, b.spaceWhat, space0, space1, per/sealed)

	// Lookups with N present.
	rand.Shuffle(len(sample), func(i, j int) { sample[i], sample[j] = sample[j], sample[i] })
	first, firstDone, err := lookups(ctx, mgr, sample)
	if err != nil {
		return err
	}
	again, _, err := lookups(ctx, mgr, sample)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nlookup (Manager.Load by cookie, slide on, one at a time, %d sessions, %d present):\n", len(sample), o.n)
	fmt.Fprintf(out, "  first use (unseal, decode; starts the LastSeen write if unused for a minute): p50 %s  p99 %s  max %s\n", us(first.Quantile(0.5)), us(first.Quantile(0.99)), us(first.Max()))
	fmt.Fprintf(out, "  first use until its LastSeen write is in the store (the request's end):    p50 %s  p99 %s  max %s\n", us(firstDone.Quantile(0.5)), us(firstDone.Quantile(0.99)), us(firstDone.Max()))
	fmt.Fprintf(out, "  used again at once (read only, decoded form reused):                 p50 %s  p99 %s  max %s\n", us(again.Quantile(0.5)), us(again.Quantile(0.99)), us(again.Max()))

	// Sweep of sessions that expire together, while requests run.
	if o.expired > 0 {
		if err := sweepPhase(ctx, o, b, st, ring, createRate, sample, mgr, fill, out); err != nil {
			return err
		}
	}

	// Restart on the full bolt file.
	if o.store == "bolt" {
		b.close()
		closed = true
		if err := boltRestart(ctx, env.boltPath, key, sample[0], out); err != nil {
			return err
		}
	}

	if o.loginsFor > 0 {
		if err := loginRate(ctx, o, out); err != nil {
			return err
		}
	}
	return nil
}

func sessionRing(key string) (*seal.Ring, error) {
	k, err := seal.ParseKey(key)
	if err != nil {
		return nil, err
	}
	r, err := seal.NewRing(k)
	if err != nil {
		return nil, err
	}
	return r.Derive("session") // as the gateway derives it, so it can read the file
}

// lookups loads every sampled session once, one at a time, as the request
// path does, and returns the latencies of the load and of the load until
// the slide it started is written (where the request that loaded it ends).
func lookups(ctx context.Context, mgr *session.Manager, cookies []string) (load, written *benchkit.Hist, err error) {
	load, written = &benchkit.Hist{}, &benchkit.Hist{}
	for _, c := range cookies {
		t0 := time.Now()
		s, err := mgr.LoadKey(ctx, session.KeyOf(c), true)
		if err != nil {
			return nil, nil, fmt.Errorf("lookup: %w", err)
		}
		load.Record(time.Since(t0))
		s.SlideWritten(ctx)
		written.Record(time.Since(t0))
	}
	return load, written, nil
}

// sweepPhase creates o.expired sessions that all expire at one instant a
// little after they are written, then measures request latency on the live
// sessions from before that instant until the sweep is over.
func sweepPhase(ctx context.Context, o options, b *backend, st *sizing, ring *seal.Ring, rate float64, sample []string, live *session.Manager,
	fill func(*session.Manager, int, bool) (time.Duration, error), out io.Writer) error {
	const idle = time.Hour
	est := time.Duration(float64(o.expired)/rate*float64(time.Second)) + time.Duration(float64(o.expired)/rate*float64(time.Second))/2
	deadline := time.Now().Add(est + o.sweepMargin)
	frozen := deadline.Add(-idle)
	// A manager whose clock says "an hour before the deadline": every
	// session it creates has ExpiresAt = deadline.
	em, err := session.NewManager(session.Options{Store: st, Ring: ring, CookieName: "__Host-gatehouse", IdleTimeout: idle, AbsoluteTimeout: 2 * idle,
		Now: func() time.Time { return frozen }})
	if err != nil {
		return err
	}
	took, err := fill(em, o.expired, false)
	if err != nil {
		return err
	}
	wait := time.Until(deadline)
	fmt.Fprintf(out, "\nsweep: %d sessions expiring at one instant written in %s; they expire %s later\n", o.expired, took.Round(time.Millisecond), wait.Round(time.Millisecond))
	if wait < 0 {
		fmt.Fprintln(out, "  (they expired while being written: the estimate of the write rate was low)")
	}
	window := o.sweepWindow
	if window == 0 {
		window = b.sweepEvery + 15*time.Second
	}
	start := time.Until(deadline) - min(2*time.Second, o.sweepMargin/2)
	if start > 0 {
		select {
		case <-time.After(start):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		total  benchkit.Hist
		perSec = map[int64]*benchkit.Hist{}
		lerr   error
	)
	begin := time.Now()
	end := begin.Add(window)
	for w := range o.conns {
		wg.Go(func() {
			var h benchkit.Hist
			local := map[int64]*benchkit.Hist{}
			for i := w; time.Now().Before(end) && ctx.Err() == nil; i += o.conns {
				t0 := time.Now()
				s, err := live.LoadKey(ctx, session.KeyOf(sample[i%len(sample)]), true)
				if err != nil {
					mu.Lock()
					lerr = err
					mu.Unlock()
					return
				}
				s.SlideWritten(ctx)
				d := time.Since(t0)
				h.Record(d)
				sec := int64(t0.Sub(begin) / time.Second)
				if local[sec] == nil {
					local[sec] = &benchkit.Hist{}
				}
				local[sec].Record(d)
			}
			mu.Lock()
			total.Merge(&h)
			for s, x := range local {
				if perSec[s] == nil {
					perSec[s] = &benchkit.Hist{}
				}
				perSec[s].Merge(x)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if lerr != nil {
		return lerr
	}
	if b.sweepEvery > 0 {
		fmt.Fprintf(out, "  the store sweeps by itself every %s; the instant they expire is %s into the window, so one sweep in the window removes them all\n", b.sweepEvery, deadline.Sub(begin).Round(time.Millisecond))
	} else {
		fmt.Fprintf(out, "  the backend expires records by itself; the instant they expire is %s into the window\n", deadline.Sub(begin).Round(time.Millisecond))
	}
	fmt.Fprintf(out, "  requests (Manager.Load until its slide is written, %d concurrent) over %s: %d, p50 %s  p99 %s  max %s\n", o.conns, window, total.Count(), us(total.Quantile(0.5)), us(total.Quantile(0.99)), us(total.Max()))
	var worst time.Duration
	var line strings.Builder
	for s := int64(0); s <= int64(window/time.Second); s++ {
		if h := perSec[s]; h != nil {
			p := h.Quantile(0.99)
			worst = max(worst, p)
			fmt.Fprintf(&line, " %s", us(p))
		}
	}
	fmt.Fprintf(out, "  p99 per second:%s\n  worst one-second p99: %s\n", line.String(), us(worst))
	if b.sweeps != nil {
		for _, sp := range b.sweeps.between(begin) {
			fmt.Fprintf(out, "  the store swept %d sessions from %s to %s into the window (%s)\n", sp.count,
				sp.start.Sub(begin).Round(time.Millisecond), sp.end.Sub(begin).Round(time.Millisecond), sp.end.Sub(sp.start).Round(time.Millisecond))
		}
	}
	return nil
}

// boltRestart measures how long a gateway takes from start on the full
// bolt file to its first served session request.
func boltRestart(ctx context.Context, path, key, cookieValue string, out io.Writer) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	t0 := time.Now()
	g, err := benchkit.StartGateway(benchkit.GatewayOptions{
		Store: "bolt", Key: key, Issuer: fakeIssuer, Upstream: "http://127.0.0.1:9",
		Customize: func(c *config.Config) { c.Session.BoltPath = path },
	}, nil, nil)
	if err != nil {
		return err
	}
	defer g.Close()
	opened := time.Since(t0)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+"/bff/user", nil)
		req.Header.Set("Cookie", g.CookieName+"="+cookieValue)
		req.Header.Set("X-CSRF", "1")
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			if resp.StatusCode == http.StatusUnauthorized {
				return errors.New("bolt restart: the gateway does not know a filled session (401)")
			}
		}
		if time.Since(t0) > time.Minute {
			return fmt.Errorf("bolt restart: not serving after a minute (last: %v)", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Fprintf(out, "\nbolt restart: a gateway on the %d MB file served a session's /bff/user %s after start (New returned after %s)\n",
		fi.Size()>>20, time.Since(t0).Round(time.Millisecond), opened.Round(time.Millisecond))
	return nil
}

// loginRate runs full logins (gateway, development provider, callback)
// from concurrent browsers against a gateway on a fresh instance of the
// store, and reports logins per second.
func loginRate(ctx context.Context, o options, out io.Writer) error {
	dir, err := os.MkdirTemp("", "gatehouse-logins-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := benchkit.StoreEnv{Dir: dir, RedisURL: benchkit.RedisURL(), RedisPrefix: benchkit.NewRedisPrefix()}
	if o.store == "redis" {
		defer benchkit.DropRedisPrefix(env.RedisURL, env.RedisPrefix)
	}
	lnGW, err := listen()
	if err != nil {
		return err
	}
	op, err := benchkit.StartProvider(benchkit.ProviderOptions{RedirectURIs: []string{"http://" + lnGW.Addr().String() + "/bff/callback"}})
	if err != nil {
		return err
	}
	defer op.Close()
	g, err := benchkit.StartGateway(benchkit.GatewayOptions{Store: o.store, Env: env, Issuer: op.Issuer(), Upstream: "http://127.0.0.1:9", RateLimit: -1}, lnGW, nil)
	if err != nil {
		return err
	}
	defer g.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	var n, fails atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	end := time.Now().Add(o.loginsFor)
	for range o.loginConns {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				br, _ := benchkit.NewBrowser(g.URL, g.CookieName, tr)
				if _, err := br.Login(ctx); err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(out, "\nlogins: %.0f full logins/s (%d browsers, %s; gateway, provider and browsers share the CPUs; fresh %s store), %d failed\n",
		float64(n.Load())/o.loginsFor.Seconds(), o.loginConns, o.loginsFor, o.store, fails.Load())
	if fails.Load() > 0 {
		return fmt.Errorf("logins failed: %v", firstErr.Load())
	}
	return nil
}

// newSession returns the i-th session: a user's session as an OpenID
// provider such as Keycloak fills it, with a JWT access token, an ID token
// and a refresh token, each of the usual size. The tokens are JWT-shaped
// with per-session claims and random signature bytes: the store sees only
// the sealed record, and the request path never verifies them.
func newSession(i int) *session.Session {
	now := time.Now()
	sub := fmt.Sprintf("%08x-4c1e-4b7a-9d2f-%012x", i, rand.Int64N(1<<48))
	sid := fmt.Sprintf("%012x-%08x", rand.Int64N(1<<48), i)
	email := fmt.Sprintf("user%07d@example.com", i)
	idClaims := map[string]any{
		"iss": fakeIssuer, "sub": sub, "aud": "gatehouse", "azp": "gatehouse",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "auth_time": now.Unix(),
		"sid": sid, "email": email, "email_verified": true,
		"name": fmt.Sprintf("User %07d", i), "preferred_username": fmt.Sprintf("user%07d", i),
	}
	atClaims := map[string]any{
		"iss": fakeIssuer, "sub": sub, "aud": []string{"orders-api", "billing-api"},
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "auth_time": now.Unix(), "jti": randToken(16),
		"azp": "gatehouse", "sid": sid, "client_id": "gatehouse",
		"scope": "openid profile email offline_access orders:read orders:write",
		"roles": []string{"customer", "offline_access"},
	}
	idt := jwtShaped(`{"alg":"RS256","typ":"JWT","kid":"k2026-12-rotating"}`, idClaims, 256)
	at := jwtShaped(`{"alg":"RS256","typ":"at+jwt","kid":"k2026-12-rotating"}`, atClaims, 256)
	rt := randToken(48) // opaque, as most providers issue refresh tokens
	claims := map[string]any{}
	for k, v := range idClaims {
		claims[k] = v
	}
	return &session.Session{
		Issuer: fakeIssuer, Subject: sub, SID: sid, Claims: claims,
		Tokens:    session.Tokens{AccessToken: at, TokenType: "Bearer", RefreshToken: rt, IDToken: idt, Expiry: now.Add(time.Hour), Scope: "openid profile email offline_access"},
		UserAgent: "Chrome 131 on macOS",
	}
}

func jwtShaped(header string, claims map[string]any, sigBytes int) string {
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(payload) + "." + randToken(sigBytes)
}

func randToken(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }
