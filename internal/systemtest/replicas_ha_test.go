package systemtest

import (
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/redisconf"
	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// redisTarget provides a Redis deployment for the replica tests: a client
// of it (for key prefixes and inspection) and the configuration that
// points a gateway at it.
type redisTarget func(t *testing.T) (redis.UniversalClient, func(*config.Config))

// singleRedis is one Redis server through session.redis_url.
func singleRedis(t *testing.T) (redis.UniversalClient, func(*config.Config)) {
	url := redisURL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	t.Cleanup(func() { rc.Close() })
	return rc, func(c *config.Config) { c.Session.RedisURL = url }
}

// sentinelRedis is a master, a replica and three Sentinels, configured
// through the redis block (addrs and master_name).
func sentinelRedis(t *testing.T) (redis.UniversalClient, func(*config.Config)) {
	d := redistest.StartSentinel(t)
	return haRedis(t, config.Redis{Addrs: d.Addrs(), MasterName: redistest.SentinelMaster})
}

// clusterRedis is a three-master Cluster, configured through the redis
// block (addrs and cluster: true).
func clusterRedis(t *testing.T) (redis.UniversalClient, func(*config.Config)) {
	cl := redistest.StartCluster(t)
	return haRedis(t, config.Redis{Addrs: cl.Addrs(), Cluster: true})
}

// haRedis returns a client built like the gateway's, and the redis block.
func haRedis(t *testing.T, block config.Redis) (redis.UniversalClient, func(*config.Config)) {
	t.Helper()
	cfg := &config.Config{Redis: block}
	cfg.SetDefaults()
	rc, err := redisconf.Client(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc, func(c *config.Config) {
		timeout := c.Redis.Timeout
		c.Redis = block
		if timeout != 0 {
			c.Redis.Timeout = timeout
		}
	}
}

// replicasOn starts two gateways sharing the target Redis (under a key
// prefix of their own), one provider and one clock; extra changes both
// gateways' configuration further.
func replicasOn(t *testing.T, target redisTarget, extra ...func(*config.Config)) (a, b *env, op *hostileop.Provider, rc redis.UniversalClient, prefix string) {
	t.Helper()
	rc, point := target(t)
	prefix = redistest.Prefix(t, rc)
	a, b = newEnv(t), newEnv(t)
	b.clock = a.clock
	op = hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, a.callbackURL(), b.callbackURL()))
	op.SetClock(a.clock.Now)
	op.SetAccessTokenTTL(5 * time.Minute)
	key := newKey(t, "k1")
	cfg := func(c *config.Config) {
		c.Session.Store = "redis"
		c.Session.Keys = []string{key}
		point(c)
		c.Redis.KeyPrefix = prefix
		for _, f := range extra {
			f(c)
		}
	}
	a.start(op.URL, cfg)
	b.start(op.URL, cfg)
	return a, b, op, rc, prefix
}

// The two-replica tests, on Sentinel and on Cluster: a session made on one
// gateway works on the other, a logout there is effective here at once,
// concurrent calls on both refresh once, and a back-channel logout
// delivered to either ends the session everywhere. One deployment serves
// every subtest, each under a key prefix of its own.
func TestReplicasOnSentinel(t *testing.T) { runReplicaTests(t, sentinelRedis) }

func TestReplicasOnCluster(t *testing.T) { runReplicaTests(t, clusterRedis) }

func runReplicaTests(t *testing.T, start redisTarget) {
	rc, point := start(t)
	shared := func(*testing.T) (redis.UniversalClient, func(*config.Config)) { return rc, point }
	t.Run("ShareSessions", func(t *testing.T) { testReplicasShareSessions(t, shared) })
	t.Run("RefreshOnce", func(t *testing.T) { testReplicasRefreshOnce(t, shared) })
	t.Run("BackchannelLogout", func(t *testing.T) { testBackchannelLogoutAcrossReplicas(t, shared) })
}
