package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name the Sentinels of StartSentinel monitor.
const SentinelMaster = "gatehouse"

// Sentinel is a Redis Sentinel deployment on loopback: a master, one
// replica and three Sentinels (quorum 2), each a redis-server process in a
// directory of its own. Sentinels declare the master down after 1 s
// without an answer, so a failover completes within a few seconds.
type Sentinel struct {
	t         testing.TB
	sentinels []*Server

	mu   sync.Mutex
	data []*Server // the master and the replica, in no fixed order
}

// StartSentinel starts a Sentinel deployment for t, waits until the
// Sentinels know the replica and each other, and kills every process when
// t ends. Without redis-server on PATH it skips t, or fails it when
// CI=true.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := lookBinary(t, "redis-server")
	master := startServer(t, bin, nil)
	replica := startServer(t, bin, func(s *Server) ([]string, error) {
		return append(plainArgs(s), "--replicaof", "127.0.0.1", strconv.Itoa(master.port)), nil
	})
	d := &Sentinel{t: t, data: []*Server{master, replica}}
	for range 3 {
		d.sentinels = append(d.sentinels, startServer(t, bin, func(s *Server) ([]string, error) {
			conf := filepath.Join(s.dir, "sentinel.conf")
			body := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
daemonize no
sentinel resolve-hostnames no
sentinel monitor %[3]s 127.0.0.1 %[4]d 2
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 10000
sentinel parallel-syncs %[3]s 1
`, s.port, s.dir, SentinelMaster, master.port)
			if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
				return nil, err
			}
			return []string{conf, "--sentinel"}, nil
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitLinked(ctx, replica); err != nil {
		t.Fatalf("redistest: sentinel: %v", err)
	}
	for _, s := range d.sentinels {
		if err := waitSentinelReady(ctx, s); err != nil {
			t.Fatalf("redistest: sentinel %s: %v", s.Addr(), err)
		}
	}
	return d
}

// plainArgs is the command line of a server without persistence.
func plainArgs(s *Server) []string {
	return []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
	}
}

// waitLinked waits until replica's link to its master is up.
func waitLinked(ctx context.Context, replica *Server) error {
	c := redis.NewClient(&redis.Options{Addr: replica.Addr(), MaxRetries: -1})
	defer c.Close()
	return poll(ctx, func() error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s not linked to its master yet", replica.Addr())
		}
		return nil
	})
}

// waitSentinelReady waits until s knows the replica and the two other
// Sentinels, without which it could not fail over.
func waitSentinelReady(ctx context.Context, s *Server) error {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	return poll(ctx, func() error {
		m, err := c.Master(ctx, SentinelMaster).Result()
		if err != nil {
			return err
		}
		if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
			return fmt.Errorf("knows %s replicas and %s other sentinels", m["num-slaves"], m["num-other-sentinels"])
		}
		return nil
	})
}

// poll calls f every 50 ms until it succeeds or ctx ends, and returns f's
// last error then.
func poll(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Addrs returns the Sentinels' host:port addresses, for redis.addrs with
// redis.master_name SentinelMaster.
func (d *Sentinel) Addrs() []string {
	out := make([]string, len(d.sentinels))
	for i, s := range d.sentinels {
		out[i] = s.Addr()
	}
	return out
}

// MasterAddr returns the master's address as the first Sentinel that
// answers reports it.
func (d *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var lastErr error
	for _, s := range d.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		addr, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		c.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1], nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("redistest: no sentinel names the master: %v", lastErr)
}

// KillMaster kills the current master's process (SIGKILL, by PID) and
// returns its address. The Sentinels then promote the replica.
func (d *Sentinel) KillMaster(ctx context.Context) string {
	d.t.Helper()
	addr, err := d.MasterAddr(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.data {
		if s.Addr() == addr {
			s.Stop()
			return addr
		}
	}
	d.t.Fatalf("redistest: the sentinels name %s, which is not one of the servers", addr)
	return ""
}

// WaitFailover waits until every Sentinel names a master other than old
// and that master answers as one, and returns its address.
func (d *Sentinel) WaitFailover(ctx context.Context, old string) (string, error) {
	var addr string
	err := poll(ctx, func() error {
		addr = ""
		for _, s := range d.sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
			a, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
			c.Close()
			if err != nil {
				return err
			}
			got := a[0] + ":" + a[1]
			if got == old || (addr != "" && got != addr) {
				return fmt.Errorf("sentinel %s names %s", s.Addr(), got)
			}
			addr = got
		}
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:master") {
			return fmt.Errorf("%s is not a master yet", addr)
		}
		return nil
	})
	return addr, err
}
