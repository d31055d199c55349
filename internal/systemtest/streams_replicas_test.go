package systemtest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/pgtest"
	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/gatehouse-bff/gatehouse/internal/streams"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// streamReplicas starts two gateways with a stream route on Redis: A at
// urlA and B at urlB (the same server, perhaps as different users).
// B's metrics are in regB.
func streamReplicas(t *testing.T, urlA, urlB, prefix string) (a, b *env, up *streamUpstream, regB *prometheus.Registry) {
	t.Helper()
	key := newKey(t, "k1")
	return streamReplicasWith(t, redisConfig(urlA, prefix, key), redisConfig(urlB, prefix, key))
}

// streamReplicasWith starts two gateways with a stream route, configured
// by storeA and storeB.
func streamReplicasWith(t *testing.T, storeA, storeB func(*config.Config)) (a, b *env, up *streamUpstream, regB *prometheus.Registry) {
	t.Helper()
	up = newStreamUpstream(t)
	a, b = newEnv(t), newEnv(t)
	b.clock = a.clock
	regB = prometheus.NewRegistry()
	b.options = append(b.options, gatehouse.WithMetrics(regB))
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, a.callbackURL(), b.callbackURL()),
		hostileop.WithPostLogoutRedirectURIs(testClientID, a.publicURL+"/", b.publicURL+"/"))
	op.SetClock(a.clock.Now)
	a.start(op.URL, withStreamRoute(up, storeA))
	b.start(op.URL, withStreamRoute(up, storeB))
	return a, b, up, regB
}

// logoutOn logs the session br holds out through gateway e's logout
// endpoint.
func logoutOn(t *testing.T, br *browser) {
	t.Helper()
	_, claims := br.user()
	lu, _ := claims["bff:logout_url"].(string)
	if r := br.do("GET", lu, nil, false); r.StatusCode != http.StatusFound {
		t.Fatalf("logout = %d", r.StatusCode)
	}
}

// TestStreamOnAnotherReplicaEndsWithTheSession logs out on replica A and
// expects the streams the browser holds through replica B to close: the
// end crosses replicas on the Redis channel.
func TestStreamOnAnotherReplicaEndsWithTheSession(t *testing.T) {
	url := redisURL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	t.Cleanup(func() { rc.Close() })
	prefix := redistest.Prefix(t, rc)
	a, b, up, regB := streamReplicas(t, url, url, prefix)
	// Both replicas listen before anything ends.
	for i := 0; ; i++ {
		n, err := rc.PubSubNumSub(context.Background(), prefix+"streams:ended").Result()
		if err == nil && n[prefix+"streams:ended"] >= 2 {
			break
		}
		if i == 100 {
			t.Fatalf("the replicas did not subscribe to the channel of ended sessions: %v %v", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ba, bb := a.browser(), b.browser()
	if r := ba.login("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("login on A = %d", r.StatusCode)
	}
	carry(t, ba, bb)
	ws, sse := openWebSocket(t, bb), openEventStream(t, bb)
	at := time.Now()
	logoutOn(t, ba)
	for _, s := range []*liveStream{ws, sse} {
		d := waitClosed(t, s, at, "logout on A")
		t.Logf("logout on replica A: %s stream on replica B closed after %v", s.kind, d.Round(time.Millisecond))
	}
	waitUpstreamEnded(t, up, 2, "logout on A")
	// B closed them because A said so, not by its own re-check (which
	// would count them as "ended").
	if n := metricValue(t, regB, "gatehouse_streams_closed_total", "logout"); n != 2 {
		t.Errorf("B counted %v streams closed for logout, want 2 (the channel did not carry the end)", n)
	}
}

// TestStreamOnAnotherReplicaEndsWithoutTheChannel gives replica B a Redis
// user that may not use any pub/sub channel: B never hears of A's ends,
// and its periodic re-check still closes the streams, within one
// re-check interval (2s) more.
func TestStreamOnAnotherReplicaEndsWithoutTheChannel(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client(t)
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "nochannels", "on", "nopass", "~*", "resetchannels", "+@all").Err(); err != nil {
		t.Fatalf("create a Redis user without channels: %v", err)
	}
	// The user really is refused the channel.
	nc := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "nochannels", Password: "x"})
	t.Cleanup(func() { nc.Close() })
	if err := nc.Publish(ctx, "{gatehouse}:streams:ended", "x").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("publish as the user without channels: %v, want NOPERM", err)
	}
	urlB := (&url.URL{Scheme: "redis", User: url.UserPassword("nochannels", "x"), Host: srv.Addr(), Path: "/0"}).String()
	a, b, up, regB := streamReplicas(t, srv.URL(), urlB, "{gatehouse}:")
	ba, bb := a.browser(), b.browser()
	if r := ba.login("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("login on A = %d", r.StatusCode)
	}
	carry(t, ba, bb)
	ws, sse := openWebSocket(t, bb), openEventStream(t, bb)
	if r := bb.api("GET", "/api/x"); r.StatusCode != http.StatusOK {
		t.Fatalf("B cannot use the session without the channel: %d", r.StatusCode)
	}
	at := time.Now()
	logoutOn(t, ba)
	for _, s := range []*liveStream{ws, sse} {
		d := waitClosedWithin(t, s, at, closeDeadline+2*time.Second, "logout on A, channel down on B")
		t.Logf("logout on replica A, channel down on B: %s stream closed after %v (re-check every 2s)", s.kind, d.Round(time.Millisecond))
	}
	waitUpstreamEnded(t, up, 2, "logout on A, channel down on B")
	if n := metricValue(t, regB, "gatehouse_streams_closed_total", "ended"); n != 2 {
		t.Errorf("B counted %v streams closed by its re-check, want 2", n)
	}
	if !strings.Contains(b.logs.String(), "channel of ended sessions failed") {
		t.Error("B did not log that its channel is down")
	}
}

// TestStreamOnAnotherReplicaEndsWithTheSessionOnPostgres is the same over
// the PostgreSQL store: the end crosses replicas on LISTEN/NOTIFY.
func TestStreamOnAnotherReplicaEndsWithTheSessionOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	key := newKey(t, "k1")
	pg := func(c *config.Config) {
		c.Session.Store = config.StorePostgres
		c.Postgres.DSN = dsn
		c.Session.Keys = []string{key}
	}
	a, b, up, regB := streamReplicasWith(t, pg, pg)
	ba, bb := a.browser(), b.browser()
	if r := ba.login("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("login on A = %d", r.StatusCode)
	}
	carry(t, ba, bb)
	ws, sse := openWebSocket(t, bb), openEventStream(t, bb)
	// Both replicas listen before anything ends (other listeners on the
	// server may count too; the check only keeps the test from racing
	// the replicas' start).
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for i := 0; ; i++ {
		var n int
		err := conn.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE query = $1", `LISTEN "`+streams.PostgresChannel+`"`).Scan(&n)
		if err == nil && n >= 2 {
			break
		}
		if i == 100 {
			t.Fatalf("the replicas do not listen for ended sessions: %d listeners, %v", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	at := time.Now()
	logoutOn(t, ba)
	for _, s := range []*liveStream{ws, sse} {
		d := waitClosed(t, s, at, "logout on A (postgres)")
		t.Logf("logout on replica A (postgres): %s stream on replica B closed after %v", s.kind, d.Round(time.Millisecond))
	}
	waitUpstreamEnded(t, up, 2, "logout on A (postgres)")
	if n := metricValue(t, regB, "gatehouse_streams_closed_total", "logout"); n != 2 {
		t.Errorf("B counted %v streams closed for logout, want 2 (LISTEN/NOTIFY did not carry the end)", n)
	}
}
