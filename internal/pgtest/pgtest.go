// Package pgtest gives tests a PostgreSQL database to talk to.
//
// DSN follows one rule for every package's tests: it connects to the
// server named by the environment variable GATEHOUSE_TEST_POSTGRES_DSN
// (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable),
// creates a schema of the test's own, and returns a DSN whose search_path
// is that schema, so tests running in parallel, in any package, never see
// each other's tables. The schema is dropped when the test ends. When the
// server does not answer the test is skipped with a loud message, except
// under CI=true, where it fails instead.
//
// Proxy puts a loopback TCP proxy in front of the server, which a test
// stops and starts again to prove how its code behaves while the database
// is unreachable.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable that points tests at a PostgreSQL
// server.
const EnvDSN = "GATEHOUSE_TEST_POSTGRES_DSN"

// DefaultDSN is the server tests use when EnvDSN is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseDSN returns the server's DSN as the environment names it, without a
// schema of the test's own.
func BaseDSN() string {
	if v := os.Getenv(EnvDSN); v != "" {
		return v
	}
	return DefaultDSN
}

// DSN returns a DSN for a fresh, empty schema of t's own on the test
// server, dropped when t ends. It skips t (fails it under CI=true) when
// the server does not answer.
func DSN(t testing.TB) string {
	t.Helper()
	base := BaseDSN()
	conn := connect(t, base)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "gatehouse_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
		conn.Close(ctx)
	})
	return WithSearchPath(base, schema)
}

// connect opens one connection to dsn, or skips or fails t.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		if err = conn.Ping(ctx); err != nil {
			conn.Close(ctx)
		}
	}
	if err != nil {
		msg := fmt.Sprintf("pgtest: PostgreSQL (%s) is not reachable: %v", redacted(dsn), err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, "SKIP LOUDLY:", msg)
		t.Skip(msg + " (start PostgreSQL on 127.0.0.1:5432 or set " + EnvDSN + "; with CI=true this is a failure)")
	}
	return conn
}

// redacted hides a URL DSN's password; key=value DSNs are not shown.
func redacted(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return EnvDSN
	}
	return u.Redacted()
}

// WithSearchPath returns dsn with its search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}

// Proxy forwards loopback TCP connections to the test server until
// stopped.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// NewProxy starts a proxy to the server that dsn names and returns it
// with dsn rewritten to go through it. The proxy stops when t ends.
func NewProxy(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("pgtest: proxy needs a postgres:// URL DSN")
	}
	p := &Proxy{t: t, target: u.Host, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Stop)
	u.Host = p.addr
	return p, u.String()
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *Proxy) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		c.Close()
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// track records an open pair, unless the proxy was stopped meanwhile.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// Stop refuses new connections and cuts the open ones, as a database that
// went away would. Stopping a stopped proxy does nothing.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Start listens again on the proxy's address after Stop.
func (p *Proxy) Start() {
	p.t.Helper()
	p.mu.Lock()
	running := p.ln != nil
	p.mu.Unlock()
	if running {
		return
	}
	var ln net.Listener
	var err error
	// The port was ours a moment ago; retry briefly should the kernel not
	// have let go of it yet.
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("pgtest: proxy restart: %v", err)
	}
	p.serve(ln)
}
