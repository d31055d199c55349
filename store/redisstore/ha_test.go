package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/redisconf"
	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
	"github.com/gatehouse-bff/gatehouse/store/storetest"
)

// haClient builds the client the gateway would for this redis block,
// through redisconf, so the real configuration path is exercised.
func haClient(t *testing.T, rc config.Redis) redis.UniversalClient {
	t.Helper()
	cfg := &config.Config{Redis: rc}
	cfg.Session.Store = "redis"
	cfg.SetDefaults()
	c, err := redisconf.Client(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sentinelClient(t *testing.T) redis.UniversalClient {
	d := redistest.StartSentinel(t)
	return haClient(t, config.Redis{Addrs: d.Addrs(), MasterName: redistest.SentinelMaster})
}

func clusterClient(t *testing.T) redis.UniversalClient {
	cl := redistest.StartCluster(t)
	return haClient(t, config.Redis{Addrs: cl.Addrs(), Cluster: true})
}

func TestConformanceSentinel(t *testing.T) {
	c := sentinelClient(t)
	if _, ok := c.(*redis.Client); !ok {
		t.Fatalf("redisconf built a %T for master_name; want a failover *redis.Client", c)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		s := redisstore.New(c, redisstore.Options{Prefix: redistest.Prefix(t, c)})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestConformanceCluster(t *testing.T) {
	c := clusterClient(t)
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("redisconf built a %T for cluster: true; want a *redis.ClusterClient", c)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		s := redisstore.New(c, redisstore.Options{Prefix: redistest.Prefix(t, c), LocalCacheTTL: time.Minute})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestClusterKeysShareTheHashSlot writes every kind of key the store has
// (records, subject and sid indexes, one-time values, locks) on a Cluster
// and checks they all hash to the prefix's slot, which is what lets each
// multi-key script run there; and that a prefix without a hash tag breaks
// those scripts, so the rule is not vacuous.
func TestClusterKeysShareTheHashSlot(t *testing.T) {
	c := clusterClient(t)
	ctx := t.Context()
	prefix := redistest.Prefix(t, c)
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	t.Cleanup(func() { s.Close() })
	for i, key := range []string{"k1", "k2", "k3"} {
		rec := &store.Record{Key: key, Issuer: "https://op", Subject: "alice", SID: "sid-" + string(rune('a'+i)),
			LastSeen: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: []byte("sealed")}
		if err := s.Create(ctx, rec); err != nil {
			t.Fatalf("Create on the cluster: %v", err)
		}
	}
	if ok, err := s.Once(ctx, "state-1", time.Minute); err != nil || !ok {
		t.Fatalf("Once: %v %v", ok, err)
	}
	unlock, err := s.(store.Locker).Lock(ctx, "refresh-k1", time.Minute)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	keys, err := redistest.Keys(ctx, c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	kinds := map[string]bool{}
	want, err := c.ClusterKeySlot(ctx, prefix).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		kind, _, _ := strings.Cut(strings.TrimPrefix(k, prefix), ":")
		kinds[kind] = true
		if slot, err := c.ClusterKeySlot(ctx, k).Result(); err != nil || slot != want {
			t.Errorf("key %q is in slot %d; want the prefix's slot %d", k, slot, want)
		}
	}
	for _, kind := range []string{"s", "sub", "sid", "lock"} {
		if !kinds[kind] {
			t.Errorf("no %q key among %q: the check did not see every kind of key", kind, keys)
		}
	}
	if recs, err := s.List(ctx, store.Filter{Issuer: "https://op", Subject: "alice"}); err != nil || len(recs) != 3 {
		t.Errorf("List on the cluster: %d records, %v", len(recs), err)
	}
	if gone, err := s.DeleteMatching(ctx, store.Filter{Issuer: "https://op", Subject: "alice"}); err != nil || len(gone) != 3 {
		t.Errorf("DeleteMatching on the cluster: %q, %v", gone, err)
	}

	// Without a hash tag the record and its index sets land in different
	// slots, and Redis Cluster refuses the script.
	untagged := "gatehouse-untagged-" + strings.Trim(prefix, "{}:") + ":"
	bad := redisstore.New(c, redisstore.Options{Prefix: untagged})
	t.Cleanup(func() { bad.Close() })
	err = bad.Create(ctx, &store.Record{Key: "k1", Issuer: "https://op", Subject: "alice", SID: "x", ExpiresAt: time.Now().Add(time.Hour)})
	if err == nil {
		if keys, _ := redistest.Keys(context.Background(), c, untagged); len(keys) > 0 {
			c.Del(context.Background(), keys[0])
		}
		t.Fatal("a prefix without a hash tag worked on the cluster; the hash-tag rule would be needless")
	}
	if !strings.Contains(err.Error(), "CROSSSLOT") && !strings.Contains(err.Error(), "different slot") {
		t.Errorf("untagged prefix on the cluster: %v; want a cross-slot refusal", err)
	}
}
