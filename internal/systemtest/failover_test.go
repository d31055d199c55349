package systemtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// The failover tests kill the Redis master (SIGKILL, by PID) while two
// gateways serve a steady stream of API calls, and check what the issue
// promises: no request reaches the API without a valid token, calls during
// the failover get 503 (never 500, never a redirect), service comes back
// within 10 s of the promotion without a restart, and sessions created more
// than a second before the kill survive. The figures (503s, recovery time,
// sessions lost, and what a WAIT after each write would cost) are logged.

func TestFailoverUnderLoadSentinel(t *testing.T) {
	d := redistest.StartSentinel(t)
	rc, point := haRedis(t, config.Redis{Addrs: d.Addrs(), MasterName: redistest.SentinelMaster})
	runFailover(t, rc, point, failoverOps{
		kill: func(ctx context.Context, _ string) string { return d.KillMaster(ctx) },
		wait: func(ctx context.Context, old, _ string) (string, error) { return d.WaitFailover(ctx, old) },
	})
}

func TestFailoverUnderLoadCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	rc, point := haRedis(t, config.Redis{Addrs: cl.Addrs(), Cluster: true})
	runFailover(t, rc, point, failoverOps{
		kill: cl.KillMasterFor,
		wait: func(ctx context.Context, old, prefix string) (string, error) {
			return cl.WaitFailover(ctx, prefix, old)
		},
	})
}

// failoverOps kill the master serving the key prefix and wait for its
// replacement.
type failoverOps struct {
	kill func(ctx context.Context, prefix string) (old string)
	wait func(ctx context.Context, old, prefix string) (promoted string, err error)
}

// guard is an API upstream that counts calls without a token the provider
// issued to the gateways.
type guard struct {
	*httptest.Server
	issued  func() []string
	calls   atomic.Int64
	invalid atomic.Int64
}

func newGuard(t *testing.T, issued func() []string) *guard {
	g := &guard{issued: issued}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if (scheme != "Bearer" && scheme != "DPoP") || tok == "" || !slices.Contains(g.issued(), tok) {
			g.invalid.Add(1)
			http.Error(w, "no valid token", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(g.Close)
	return g
}

// outcome is one API call of the stream.
type outcome struct {
	at     time.Time
	status int // 0: transport error
}

func runFailover(t *testing.T, rc redis.UniversalClient, point func(*config.Config), ops failoverOps) {
	var a, b *env
	g := newGuard(t, func() []string { return append(a.spy.Values(), b.spy.Values()...) })
	a, b, _, _, prefix := replicasOn(t, func(*testing.T) (redis.UniversalClient, func(*config.Config)) { return rc, point },
		func(c *config.Config) { c.Routes = []config.Route{{Prefix: "/api/", Upstream: g.URL}} })
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	// Sessions made well before the kill, half on each gateway.
	type sess struct {
		cookie  string
		created time.Time
	}
	login := func(e *env) sess {
		br := e.browser()
		if resp := br.login("/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("login = %d", resp.StatusCode)
		}
		return sess{cookie: br.cookie("__Host-gatehouse").Value, created: time.Now()}
	}
	var old []sess
	for i := range 20 {
		old = append(old, login([]*env{a, b}[i%2]))
	}

	// The stream: four callers, each with one of the old sessions,
	// alternating between the gateways.
	clients := map[*env]*http.Client{}
	for _, e := range []*env{a, b} {
		c := *e.srv.Client()
		c.Timeout = 20 * time.Second
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		clients[e] = &c
	}
	call := func(e *env, cookie, path string) int {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.publicURL+path, nil)
		req.Header.Set("X-CSRF", "1")
		req.AddCookie(&http.Cookie{Name: "__Host-gatehouse", Value: cookie})
		resp, err := clients[e].Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				st := call([]*env{a, b}[(w+i)%2], old[w].cookie, "/api/x")
				mu.Lock()
				outcomes = append(outcomes, outcome{at: time.Now(), status: st})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	stopStream := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopStream()
	snapshot := func() []outcome {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(outcomes)
	}

	// What a WAIT for one replica after each write would cost, measured on
	// the healthy deployment under the same stream.
	plain, waited := measureWait(t, ctx, rc, prefix)
	t.Logf("write latency (p50/p99): %v/%v without WAIT, %v/%v with WAIT 1 100", plain[0], plain[1], waited[0], waited[1])

	// Old sessions are more than a second old by now (a wait, not a test
	// of timing); four sessions are made just before the kill.
	if d := time.Until(old[len(old)-1].created.Add(1100 * time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
	var late []sess
	for i := range 4 {
		late = append(late, login([]*env{a, b}[i%2]))
	}
	for n := 0; ; n++ {
		ok := 0
		for _, o := range snapshot() {
			if o.status == http.StatusOK {
				ok++
			}
		}
		if ok >= 100 {
			break
		}
		if n > 1000 {
			t.Fatalf("the stream does not flow before the kill: %d calls succeeded", ok)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := len(snapshot())
	killed := time.Now()
	oldMaster := ops.kill(ctx, prefix)
	promotedAddr, err := ops.wait(ctx, oldMaster, prefix)
	if err != nil {
		t.Fatalf("no promotion after killing %s: %v", oldMaster, err)
	}
	promoted := time.Now()

	// Let the stream run until it has been clean for 1.5 s after the
	// promotion, or 12 s have passed since it.
	var lastBad time.Time
	for time.Since(promoted) < 12*time.Second {
		time.Sleep(100 * time.Millisecond)
		after := 0
		for _, o := range snapshot()[before:] {
			if o.status != http.StatusOK {
				lastBad = o.at
				after = 0
			} else {
				after++
			}
		}
		if time.Since(promoted) > 1500*time.Millisecond && time.Since(lastBad) > 1500*time.Millisecond && after >= 50 {
			break
		}
	}
	stopStream()
	all := snapshot()

	statuses := map[int]int{}
	var first503, last503 time.Time
	for _, o := range all[before:] {
		statuses[o.status]++
		if o.status == http.StatusServiceUnavailable {
			if first503.IsZero() {
				first503 = o.at
			}
			last503 = o.at
		}
	}
	for st, n := range statuses {
		if st != http.StatusOK && st != http.StatusServiceUnavailable {
			t.Errorf("%d calls during the failover answered %s; want only 200 or 503", n, statusName(st))
		}
	}
	if n := g.invalid.Load(); n != 0 {
		t.Errorf("%d of %d proxied calls reached the API without a valid token", n, g.calls.Load())
	}
	recovery := max(lastBad.Sub(promoted), 0)
	if !lastBad.IsZero() && (recovery > 10*time.Second || time.Since(lastBad) < time.Second) {
		t.Errorf("service did not recover within 10 s of the promotion: last failure %v after it", lastBad.Sub(promoted))
	}

	// Which sessions survived: each is asked for on the gateway it was not
	// made on, retrying a 503 (bounded).
	lost := func(ss []sess) int {
		n := 0
		for _, s := range ss {
			st := 0
			for range 50 {
				if st = call(b, s.cookie, "/bff/user"); st != http.StatusServiceUnavailable {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if st != http.StatusOK {
				n++
			}
		}
		return n
	}
	lostOld, lostLate := lost(old), lost(late)
	if lostOld != 0 {
		t.Errorf("%d of %d sessions created more than 1 s before the kill were lost", lostOld, len(old))
	}

	span := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Sub(killed).Round(time.Millisecond).String()
	}
	t.Logf("failover %s -> %s: promotion observed %v after the kill", oldMaster, promotedAddr, promoted.Sub(killed).Round(time.Millisecond))
	t.Logf("calls from the kill on: %d (200: %d, 503: %d, transport errors: %d); 503s from %s to %s after the kill",
		len(all)-before, statuses[http.StatusOK], statuses[http.StatusServiceUnavailable], statuses[0], span(first503), span(last503))
	t.Logf("recovery: %v after the promotion (%v after the kill)", recovery.Round(time.Millisecond), max(lastBad.Sub(killed), 0).Round(time.Millisecond))
	t.Logf("sessions lost: %d of %d created more than 1 s before the kill, %d of %d created in the last moments before it",
		lostOld, len(old), lostLate, len(late))
	t.Logf("proxied calls: %d, without a valid token: %d", g.calls.Load(), g.invalid.Load())
	t.Logf("timeline from the kill, per 250 ms (200s/other): %s", timeline(all[before:], killed))
}

// timeline buckets outcomes by completion time in 250 ms steps from start.
func timeline(os []outcome, start time.Time) string {
	var ok, bad []int
	for _, o := range os {
		i := int(o.at.Sub(start) / (250 * time.Millisecond))
		for len(ok) <= i {
			ok, bad = append(ok, 0), append(bad, 0)
		}
		if o.status == http.StatusOK {
			ok[i]++
		} else {
			bad[i]++
		}
	}
	var b strings.Builder
	for i := range ok {
		fmt.Fprintf(&b, " %d/%d", ok[i], bad[i])
	}
	return b.String()
}

func statusName(st int) string {
	if st == 0 {
		return "a transport error"
	}
	return fmt.Sprintf("%d %s", st, http.StatusText(st))
}

// measureWait times 200 writes of a 2.5 KB record under the prefix, each a
// pipeline on the master's connection, without and with WAIT 1 100 (the
// write acknowledged by one replica, waiting at most 100 ms), and returns
// the p50 and p99 of each.
func measureWait(t *testing.T, ctx context.Context, rc redis.UniversalClient, prefix string) (plain, waited [2]time.Duration) {
	t.Helper()
	key := prefix + "wait-probe"
	var node *redis.Client
	switch c := rc.(type) {
	case *redis.Client:
		node = c
	case *redis.ClusterClient:
		var err error
		if node, err = c.MasterForKey(ctx, key); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("client %T", rc)
	}
	data := strings.Repeat("x", 2500)
	run := func(wait bool) [2]time.Duration {
		var ds []time.Duration
		for range 200 {
			start := time.Now()
			_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, key, "d", data)
				p.PExpire(ctx, key, time.Minute)
				if wait {
					p.Do(ctx, "WAIT", 1, 100)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("probe write: %v", err)
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return [2]time.Duration{ds[len(ds)/2], ds[len(ds)*99/100]}
	}
	plain, waited = run(false), run(true)
	node.Del(ctx, key)
	return plain, waited
}
