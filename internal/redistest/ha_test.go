package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestSentinelFailsOver(t *testing.T) {
	d := StartSentinel(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: SentinelMaster, SentinelAddrs: d.Addrs()})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the sentinels: %v", err)
	}
	if err := c.Wait(ctx, 1, time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	old := d.KillMaster(ctx)
	addr, err := d.WaitFailover(ctx, old)
	if err != nil {
		t.Fatalf("no failover after the master %s was killed: %v", old, err)
	}
	if addr == old {
		t.Fatalf("master still %s", old)
	}
	// The client follows the promotion; the replicated key survived it.
	if err := poll(ctx, func() error { return c.Get(ctx, "k").Err() }); err != nil {
		t.Fatalf("GET after failover: %v", err)
	}
	if v, _ := c.Get(ctx, "k").Result(); v != "v" {
		t.Errorf("k = %q after failover; want the replicated v", v)
	}
}

func TestClusterFailsOver(t *testing.T) {
	cl := StartCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ClusterStateReloadInterval: time.Second})
	defer c.Close()
	const key = "{gatehouse-ha}:k"
	// A multi-key command: the hash tag keeps both keys in one slot.
	if err := c.MSet(ctx, key, "v", "{gatehouse-ha}:k2", "w").Err(); err != nil {
		t.Fatalf("MSET on the cluster: %v", err)
	}
	// Replication is asynchronous: wait for the replica to have the keys
	// before the master dies, as the Sentinel test does.
	master, err := c.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := master.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n < 1 {
		t.Fatalf("WAIT for the replica: %d, %v", n, err)
	}
	old := cl.KillMasterFor(ctx, key)
	addr, err := cl.WaitFailover(ctx, key, old)
	if err != nil {
		t.Fatalf("no failover after the master %s was killed: %v", old, err)
	}
	if err := poll(ctx, func() error { return c.Get(ctx, key).Err() }); err != nil {
		t.Fatalf("GET after failover to %s: %v", addr, err)
	}
}
