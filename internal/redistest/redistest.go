package redistest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable that points tests at an existing
// Redis server instead of a private one.
const EnvURL = "GATEHOUSE_TEST_REDIS_URL"

// Client returns a client for the test Redis server chosen as the package
// documentation describes. The client is closed, and a private server
// killed, when t ends.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	if url := os.Getenv(EnvURL); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("redistest: %s: %v", EnvURL, err)
		}
		c := redis.NewClient(opts)
		t.Cleanup(func() { c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("redistest: %s=%s is not reachable: %v", EnvURL, url, err)
		}
		return c
	}
	return Start(t).Client(t)
}

// Prefix returns a store key prefix unique to this test, with a Redis
// Cluster hash tag, and deletes every key under it when t ends.
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	p := "{gatehouse-test-" + hex.EncodeToString(b) + "}:"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := Keys(ctx, c, p)
		if err != nil {
			return // a test may have stopped the server on purpose
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return p
}

// Keys returns every key that starts with prefix. It scans the keyspace (of
// every master, on a Cluster), so it is for tests only.
func Keys(ctx context.Context, c redis.UniversalClient, prefix string) ([]string, error) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		var out []string
		err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			keys, err := scanKeys(ctx, m, prefix)
			mu.Lock()
			out = append(out, keys...)
			mu.Unlock()
			return err
		})
		return out, err
	}
	return scanKeys(ctx, c, prefix)
}

func scanKeys(ctx context.Context, c redis.Cmdable, prefix string) ([]string, error) {
	var out []string
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, globEscape(prefix)+"*", 1000).Result()
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

func globEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Server is a private redis-server process on a loopback port. Its port
// stays the same across Stop and Restart, so clients reconnect to it.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	// args gives the command line for the server's port and directory;
	// nil: a plain server without persistence.
	args func(s *Server) ([]string, error)

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs a private redis-server for t and stops it when t ends. Without
// redis-server on PATH it skips t, or fails it when CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	return startServer(t, lookBinary(t, "redis-server"), nil)
}

// lookBinary finds a Redis program on PATH, or skips t (fails it when
// CI=true).
func lookBinary(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		msg := "redistest: REDIS TESTS NOT RUN: " + name + " is not on PATH and " + EnvURL + " is not set"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg + " (install redis-server or set " + EnvURL + "; with CI=true this is a failure)")
	}
	return bin
}

// startServer runs one process of bin with the command line args gives,
// on a free loopback port, and kills it when t ends.
func startServer(t testing.TB, bin string, args func(s *Server) ([]string, error)) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), args: args}
	var lastErr error
	for range 5 {
		if s.port, lastErr = freePort(); lastErr != nil {
			continue
		}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns a redis:// URL for the server's database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a client of the server, closed when t ends.
func (s *Server) Client(t testing.TB) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// Stop kills the server at once, as a crash would. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart stops the server if it runs and starts it again, empty, on the
// same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for range 50 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart redis-server on %s: %v", s.Addr(), err)
}

// start runs the process on s.port and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	out := new(bytes.Buffer)
	args := plainArgs(s)
	if s.args != nil {
		var err error
		if args, err = s.args(s); err != nil {
			return err
		}
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr(), bytes.TrimSpace(out.Bytes()))
		default:
		}
		if err == nil {
			// Another process may have taken the port first.
			if !strings.Contains(info, "process_id:"+strconv.Itoa(cmd.Process.Pid)+"\r\n") {
				cmd.Process.Kill()
				<-exited
				return fmt.Errorf("another server answers on %s", s.Addr())
			}
			s.cmd, s.exited = cmd, exited
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server did not answer on %s: %w", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether the server's process is up (not stopped).
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}
