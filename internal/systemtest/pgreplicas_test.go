package systemtest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/pgtest"
)

func pgReplicas(t *testing.T, dsn string) (a, b *env, op *hostileop.Provider) {
	a, b = newEnv(t), newEnv(t)
	b.clock = a.clock
	op = hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, a.callbackURL(), b.callbackURL()))
	op.SetClock(a.clock.Now)
	op.SetAccessTokenTTL(5 * time.Minute)
	key := newKey(t, "k1")
	cfg := func(c *config.Config) {
		c.Session.Store = config.StorePostgres
		c.Postgres.DSN = dsn
		c.Session.Keys = []string{key}
	}
	a.start(op.URL, cfg)
	b.start(op.URL, cfg)
	return a, b, op
}

func TestPostgresReplicasShareSessions(t *testing.T) {
	a, b, _ := pgReplicas(t, pgtest.DSN(t))
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
	_, claims := bb.user()
	lu, _ := claims["bff:logout_url"].(string)
	if resp := bb.do("GET", lu, nil, false); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout on B = %d", resp.StatusCode)
	}
	if status, _ := ba.user(); status != http.StatusUnauthorized {
		t.Errorf("A still answers %d for a session B logged out", status)
	}
}

func TestPostgresReplicasRefreshOnce(t *testing.T) {
	a, b, op := pgReplicas(t, pgtest.DSN(t))
	refreshOnceAcross(t, a, b, op)
}

func TestPostgresBackchannelAcrossReplicas(t *testing.T) {
	a, b, op := pgReplicas(t, pgtest.DSN(t))
	first, second := a.browser(), b.browser()
	first.login("/")
	firstSID := op.LastSID()
	second.login("/")
	token := op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject, SessionID: firstSID})
	if code := postLogoutToken(t, b, token); code != http.StatusOK {
		t.Fatalf("valid sid logout token = %d\n%s", code, b.logs.String())
	}
	if status, _ := first.user(); status != http.StatusUnauthorized {
		t.Errorf("session named by the sid still answers %d on A", status)
	}
	if status, _ := second.user(); status != http.StatusOK {
		t.Errorf("another session ended: %d", status)
	}
	if code := postLogoutToken(t, a, token); code != http.StatusBadRequest {
		t.Errorf("replayed logout token on the other replica = %d, want 400", code)
	}
}

func TestPostgresOutageFailsClosedAndRecovers(t *testing.T) {
	proxy, dsn := pgtest.NewProxy(t, pgtest.DSN(t))
	a, _, _ := pgReplicas(t, dsn)
	ba := a.browser()
	ba.login("/")
	if resp := ba.api("GET", "/api/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("api = %d", resp.StatusCode)
	}
	_, n := a.api.Last()
	proxy.Stop()
	resp := ba.api("GET", "/api/x")
	_, m := a.api.Last()
	t.Logf("api while down = %d; upstream calls %d -> %d", resp.StatusCode, n, m)
	if resp.StatusCode != http.StatusServiceUnavailable || m != n {
		t.Errorf("down: %d, proxied %d", resp.StatusCode, m-n)
	}
	if r := ba.do("GET", "/bff/readyz", nil, false); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/bff/readyz with PostgreSQL down = %d, want 503", r.StatusCode)
	}
	proxy.Start()
	ok := false
	for range 100 {
		if resp := ba.api("GET", "/api/x"); resp.StatusCode == http.StatusOK {
			ok = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		t.Error("no recovery")
	}
	if r := ba.do("GET", "/bff/readyz", nil, false); r.StatusCode != http.StatusOK {
		t.Errorf("/bff/readyz after recovery = %d", r.StatusCode)
	}
}
