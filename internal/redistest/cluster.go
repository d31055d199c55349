package redistest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of StartCluster's nodes:
// a master that does not answer this long is failed over to its replica.
const ClusterNodeTimeout = 1000 * time.Millisecond

// Cluster is a Redis Cluster on loopback: three masters, each with one
// replica, made with `redis-cli --cluster create`.
type Cluster struct {
	t     testing.TB
	nodes []*Server
}

// StartCluster starts a six-node cluster for t, waits until every node
// sees all slots served and every replica linked, and kills every process
// when t ends. Without redis-server and redis-cli on PATH it skips t, or
// fails it when CI=true.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := lookBinary(t, "redis-server")
	cli := lookBinary(t, "redis-cli")
	c := &Cluster{t: t}
	for range 6 {
		c.nodes = append(c.nodes, startServer(t, bin, func(s *Server) ([]string, error) {
			return append(plainArgs(s),
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout/time.Millisecond)),
				// A replica always takes over, however long its link was down.
				"--cluster-replica-validity-factor", "0",
			), nil
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out.String())
	}
	if err := c.waitHealthy(ctx); err != nil {
		t.Fatalf("redistest: cluster: %v", err)
	}
	return c
}

// waitHealthy waits until every live node reports cluster_state:ok with
// all slots served, and every replica's link is up.
func (c *Cluster) waitHealthy(ctx context.Context) error {
	return poll(ctx, func() error {
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			rc := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
			info, err := rc.ClusterInfo(ctx).Result()
			if err == nil && (!strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384")) {
				err = fmt.Errorf("node %s: cluster not ok yet", n.Addr())
			}
			var repl string
			if err == nil {
				repl, err = rc.Info(ctx, "replication").Result()
			}
			rc.Close()
			if err != nil {
				return err
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return fmt.Errorf("replica %s not linked yet", n.Addr())
			}
		}
		return nil
	})
}

// Addrs returns every node's host:port, for redis.addrs with
// redis.cluster: true.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// MasterFor returns the address of the master serving key's hash slot, as
// the first live node that answers reports it.
func (c *Cluster) MasterFor(ctx context.Context, key string) (string, error) {
	var lastErr error
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		rc := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
		addr, err := masterFor(ctx, rc, key)
		rc.Close()
		if err == nil {
			return addr, nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("redistest: no node names the master of %q: %v", key, lastErr)
}

func masterFor(ctx context.Context, rc *redis.Client, key string) (string, error) {
	slot, err := rc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	slots, err := rc.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
			return s.Nodes[0].Addr, nil
		}
	}
	return "", fmt.Errorf("slot %d is not served", slot)
}

// KillMasterFor kills the process of the master serving key's hash slot
// (SIGKILL, by PID) and returns its address. Its replica takes over after
// ClusterNodeTimeout.
func (c *Cluster) KillMasterFor(ctx context.Context, key string) string {
	c.t.Helper()
	addr, err := c.MasterFor(ctx, key)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, n := range c.nodes {
		if n.Addr() == addr {
			n.Stop()
			return addr
		}
	}
	c.t.Fatalf("redistest: the cluster names %s, which is not one of its nodes", addr)
	return ""
}

// WaitFailover waits until key's slot is served by a master other than old
// on every live node, with the whole cluster ok again, and returns the new
// master's address.
func (c *Cluster) WaitFailover(ctx context.Context, key, old string) (string, error) {
	var addr string
	err := poll(ctx, func() error {
		addr = ""
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			rc := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
			got, err := masterFor(ctx, rc, key)
			var info string
			if err == nil {
				info, err = rc.ClusterInfo(ctx).Result()
			}
			rc.Close()
			if err != nil {
				return err
			}
			if got == old || (addr != "" && got != addr) {
				return fmt.Errorf("node %s names %s", n.Addr(), got)
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("node %s: cluster not ok", n.Addr())
			}
			addr = got
		}
		return nil
	})
	return addr, err
}
