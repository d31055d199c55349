package systemtest

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/redis/go-redis/v9"
)

// redisURL returns the test Redis server: GATEHOUSE_TEST_REDIS_URL when
// set, else a private redis-server (skipping loudly, or failing under
// CI=true, when there is none).
func redisURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv(redistest.EnvURL); u != "" {
		return u
	}
	return redistest.Start(t).URL()
}

func newKey(t *testing.T, id string) string {
	k, err := seal.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// redisConfig points a gateway at Redis under a key prefix of its own.
func redisConfig(url, prefix string, keys ...string) func(*config.Config) {
	return func(c *config.Config) {
		c.Session.Store = "redis"
		c.Session.RedisURL = url
		c.Redis.KeyPrefix = prefix
		c.Session.Keys = keys
	}
}

// replicas starts two gateways sharing one Redis, one provider and one clock.
func replicas(t *testing.T) (a, b *env, op *hostileop.Provider, rc redis.UniversalClient, prefix string) {
	t.Helper()
	return replicasOn(t, singleRedis)
}

// carry gives browser to the session cookie that from holds, as a load
// balancer sending the same browser to another replica would.
func carry(t *testing.T, from, to *browser) {
	t.Helper()
	c := from.cookie("__Host-gatehouse")
	if c == nil {
		t.Fatal("no session cookie to carry")
	}
	u, _ := url.Parse(to.e.publicURL)
	to.c.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/", Secure: true}})
}

func TestReplicasShareSessionsThroughRedis(t *testing.T) { testReplicasShareSessions(t, singleRedis) }

func testReplicasShareSessions(t *testing.T, target redisTarget) {
	a, b, _, _, _ := replicasOn(t, target)
	ba, bb := a.browser(), b.browser()
	if resp := ba.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login on A = %d", resp.StatusCode)
	}
	carry(t, ba, bb)
	if resp := bb.api("GET", "/api/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("API on B with A's session = %d", resp.StatusCode)
	}
	if got, _ := b.api.Last(); !strings.HasPrefix(got.Header.Get("Authorization"), "Bearer ") {
		t.Error("B forwarded no token")
	}
	// Logout on B ends the session on A at once.
	_, claims := bb.user()
	lu, _ := claims["bff:logout_url"].(string)
	if resp := bb.do("GET", lu, nil, false); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout on B = %d", resp.StatusCode)
	}
	if status, _ := ba.user(); status != http.StatusUnauthorized {
		t.Errorf("A still answers %d for a session B logged out", status)
	}
	if resp := ba.api("GET", "/api/x"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("A still proxies (%d) for a session B logged out", resp.StatusCode)
	}
}

func TestReplicasRefreshOnceForConcurrentCalls(t *testing.T) { testReplicasRefreshOnce(t, singleRedis) }

func testReplicasRefreshOnce(t *testing.T, target redisTarget) {
	a, b, op, _, _ := replicasOn(t, target)
	refreshOnceAcross(t, a, b, op)
}

// refreshOnceAcross signs in on a, carries the session to b, lets the
// access token expire and sends 100 concurrent calls to each replica while
// the provider answers refreshes slowly: every call succeeds, and the
// provider sees one refresh grant and no reuse of a spent refresh token.
func refreshOnceAcross(t *testing.T, a, b *env, op *hostileop.Provider) {
	t.Helper()
	ba, bb := a.browser(), b.browser()
	ba.login("/")
	carry(t, ba, bb)
	a.clock.Advance(10 * time.Minute) // past the access token's expiry
	op.SetRefreshMode(hostileop.RefreshSlow)
	op.SetRefreshDelay(200 * time.Millisecond)

	const perReplica = 100
	var wg sync.WaitGroup
	statuses := make(chan int, 2*perReplica)
	for range perReplica {
		wg.Go(func() { statuses <- ba.api("GET", "/api/a").StatusCode })
		wg.Go(func() { statuses <- bb.api("GET", "/api/b").StatusCode })
	}
	wg.Wait()
	close(statuses)
	failed := 0
	for s := range statuses {
		if s != http.StatusOK {
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d calls failed", failed, 2*perReplica)
	}
	if st := op.Stats(); st.RefreshGrants != 1 || st.RefreshReuses != 0 {
		t.Errorf("provider saw %d refresh grants and %d reuses for %d calls on two replicas, want 1 and 0", st.RefreshGrants, st.RefreshReuses, 2*perReplica)
	}
}

func TestRedisHoldsNoTokenOrCookie(t *testing.T) {
	a, b, _, rc, prefix := replicas(t)
	ba := a.browser()
	ba.login("/")
	ba.api("GET", "/api/x")
	a.clock.Advance(10 * time.Minute)
	ba.api("GET", "/api/y") // a refresh, so rotated tokens are stored too
	ctx := context.Background()
	keys, err := redistest.Keys(ctx, rc, prefix)
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys under %s: %v (%d)", prefix, err, len(keys))
	}
	var dump strings.Builder
	for _, k := range keys {
		dump.WriteString(k + "\n")
		switch rc.Type(ctx, k).Val() {
		case "string":
			dump.WriteString(rc.Get(ctx, k).Val())
		case "hash":
			for f, v := range rc.HGetAll(ctx, k).Val() {
				dump.WriteString(f + "=" + v + "\n")
			}
		case "set":
			dump.WriteString(strings.Join(rc.SMembers(ctx, k).Val(), "\n"))
		}
	}
	secrets := append(a.spy.Values(), b.spy.Values()...)
	if len(secrets) < 4 {
		t.Fatalf("spy saw only %d tokens", len(secrets))
	}
	secrets = append(secrets, ba.cookie("__Host-gatehouse").Value)
	for _, s := range secrets {
		if strings.Contains(dump.String(), s) {
			t.Errorf("Redis holds a token or the cookie value in clear: %.12s…", s)
		}
	}
}

func TestRedisOutageFailsClosedAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	e, op := newEnv(t), (*hostileop.Provider)(nil)
	op = hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()))
	e.start(op.URL, redisConfig(srv.URL(), "{gatehouse}:", newKey(t, "k1")))
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login = %d", resp.StatusCode)
	}
	_, hits := e.api.Last()

	if r := b.do("GET", "/bff/readyz", nil, false); r.StatusCode != http.StatusOK {
		t.Errorf("/bff/readyz with Redis up = %d", r.StatusCode)
	}
	goroutines := runtime.NumGoroutine()
	srv.Stop()
	for i := range 100 {
		resp := b.api("GET", "/api/x")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("API call %d with Redis down = %d, want 503", i, resp.StatusCode)
			break
		}
	}
	if r := b.do("GET", "/bff/readyz", nil, false); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/bff/readyz with Redis down = %d, want 503", r.StatusCode)
	}
	if status, _ := b.user(); status != http.StatusServiceUnavailable {
		t.Errorf("/bff/user with Redis down = %d, want 503", status)
	}
	if resp := e.browser().login("/"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("login with Redis down ended with %d, want 503", resp.StatusCode)
	}
	if _, after := e.api.Last(); after != hits {
		t.Errorf("%d requests were proxied while sessions could not be read", after-hits)
	}

	// Redis comes back (empty: it keeps nothing on disk here). Gatehouse
	// recovers by itself: a new login and API call succeed.
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		nb := e.browser()
		if resp := nb.login("/"); resp.StatusCode == http.StatusOK {
			if r := nb.api("GET", "/api/x"); r.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("traffic did not recover within 5s of Redis coming back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := b.do("GET", "/bff/readyz", nil, false); r.StatusCode != http.StatusOK {
		t.Errorf("/bff/readyz after recovery = %d", r.StatusCode)
	}
	// 100 failed requests left no goroutines behind (bounded pool and
	// timeouts): a leak of one per request would show here.
	if n := runtime.NumGoroutine(); n > goroutines+50 {
		t.Errorf("goroutines grew from %d to %d across the outage", goroutines, n)
	}
}

func TestSessionsSurviveRestartAndKeyRotation(t *testing.T) {
	for _, store := range []string{"bolt", "redis"} {
		t.Run(store, func(t *testing.T) {
			e := newEnv(t)
			op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()))
			oldKey, nextKey := newKey(t, "old"), newKey(t, "next")
			var withKeys func(keys ...string) func(*config.Config)
			switch store {
			case "bolt":
				path := filepath.Join(t.TempDir(), "gatehouse.db")
				withKeys = func(keys ...string) func(*config.Config) {
					return func(c *config.Config) { c.Session.Store, c.Session.BoltPath, c.Session.Keys = "bolt", path, keys }
				}
			case "redis":
				url := redisURL(t)
				opts, _ := redis.ParseURL(url)
				rc := redis.NewClient(opts)
				t.Cleanup(func() { rc.Close() })
				prefix := redistest.Prefix(t, rc)
				withKeys = func(keys ...string) func(*config.Config) { return redisConfig(url, prefix, keys...) }
			}
			e.start(op.URL, withKeys(oldKey))
			b := e.browser()
			if resp := b.login("/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("login = %d", resp.StatusCode)
			}
			e.restart(op.URL, withKeys(oldKey))
			if status, _ := b.user(); status != http.StatusOK {
				t.Fatalf("session lost across a restart: %d", status)
			}
			// A new primary key, the old one kept for reading: nobody is
			// logged out.
			e.restart(op.URL, withKeys(nextKey, oldKey))
			if status, _ := b.user(); status != http.StatusOK {
				t.Fatalf("session lost after rotating to a new primary key: %d", status)
			}
			// Without the key that sealed it, the session cannot be read:
			// it fails closed rather than being trusted.
			e.restart(op.URL, withKeys(nextKey))
			if status, _ := b.user(); status == http.StatusOK {
				t.Error("a session sealed under a removed key was still accepted")
			}
		})
	}
}

// postLogoutToken delivers a back-channel logout token as a provider would.
func postLogoutToken(t *testing.T, e *env, token string) int {
	t.Helper()
	resp, err := e.srv.Client().PostForm(e.publicURL+"/bff/backchannel", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("back-channel success without Cache-Control: no-store")
	}
	return resp.StatusCode
}

func TestBackchannelLogoutAcrossReplicas(t *testing.T) {
	testBackchannelLogoutAcrossReplicas(t, singleRedis)
}

func testBackchannelLogoutAcrossReplicas(t *testing.T, target redisTarget) {
	a, b, op, _, _ := replicasOn(t, target)
	first, second := a.browser(), b.browser()
	first.login("/")
	firstSID := op.LastSID()
	second.login("/")

	// An invalid token changes nothing.
	if code := postLogoutToken(t, b, op.LogoutToken(hostileop.LogoutClaims{SessionID: firstSID}, hostileop.LogoutNoncePresent)); code != http.StatusBadRequest {
		t.Errorf("logout token with a nonce = %d, want 400", code)
	}
	if status, _ := first.user(); status != http.StatusOK {
		t.Fatal("an invalid logout token ended a session")
	}

	// A sid token delivered to B ends the session made on A, only that one.
	token := op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject, SessionID: firstSID})
	if code := postLogoutToken(t, b, token); code != http.StatusOK {
		t.Fatalf("valid sid logout token = %d\n%s", code, b.logs.String())
	}
	if status, _ := first.user(); status != http.StatusUnauthorized {
		t.Errorf("session named by the sid still answers %d on A", status)
	}
	if status, _ := second.user(); status != http.StatusOK {
		t.Errorf("another session of the user ended by a sid token: %d", status)
	}
	// Its replay, to the other replica, is refused: the jti is shared.
	if code := postLogoutToken(t, a, token); code != http.StatusBadRequest {
		t.Errorf("replayed logout token on the other replica = %d, want 400", code)
	}
	// A sub-only token ends every session of the user.
	if code := postLogoutToken(t, a, op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject})); code != http.StatusOK {
		t.Fatalf("sub logout token = %d", code)
	}
	if status, _ := second.user(); status != http.StatusUnauthorized {
		t.Errorf("sub-only logout token left a session alive: %d", status)
	}
}
