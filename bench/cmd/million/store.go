package main

// Every use of a session store's own API by this program is in this file,
// so that following a change of the store contract touches nothing else.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/sweep"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/boltstore"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
	"github.com/gatehouse-bff/gatehouse/store/pgstore"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// backend is an open session store and the ways this program measures it.
type backend struct {
	store store.Store
	// space returns the bytes the store's data takes now (what "now"
	// means depends on the store: heap, file size, Redis used_memory).
	space func(ctx context.Context) (int64, error)
	// spaceWhat names what space measures.
	spaceWhat string
	// sweepEvery is how often the store sweeps expired records by itself
	// (0: the backend expires them continuously, as Redis does).
	sweepEvery time.Duration
	// sweeps, when the store logs its sweeps, collects them.
	sweeps *sweepLog
	close  func() error
}

// sweepLog is a slog handler that keeps the sweeps a store logs
// (sweep.Done), so the sweep phase can say when they ran.
type sweepLog struct {
	mu     sync.Mutex
	sweeps []sweepSpan
}

type sweepSpan struct {
	start, end time.Time
	count      int64
}

func (l *sweepLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *sweepLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *sweepLog) WithGroup(string) slog.Handler            { return l }

func (l *sweepLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != sweep.Done {
		return nil
	}
	sp := sweepSpan{end: r.Time, start: r.Time}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "count":
			sp.count = a.Value.Int64()
		case "took":
			sp.start = r.Time.Add(-a.Value.Duration())
		}
		return true
	})
	l.mu.Lock()
	l.sweeps = append(l.sweeps, sp)
	l.mu.Unlock()
	return nil
}

// between returns the sweeps that ended after from.
func (l *sweepLog) between(from time.Time) []sweepSpan {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sweepSpan
	for _, sp := range l.sweeps {
		if sp.end.After(from) {
			out = append(out, sp)
		}
	}
	return out
}

// openers open each store by name. A new backend is one entry.
var openers = map[string]func(env storeEnv) (*backend, error){
	// Each opener gives the store the sweep interval env.sweepEvery.
	"memory":   openMemory,
	"bolt":     openBolt,
	"redis":    openRedis,
	"postgres": openPostgres,
}

// storeEnv is where stores keep their data.
type storeEnv struct {
	boltPath    string
	redisURL    string
	redisPrefix string
	postgresDSN string
	// postgresPrefix is a table prefix of this run's own; its tables are
	// dropped on close.
	postgresPrefix string
	sweepEvery     time.Duration
}

func openMemory(env storeEnv) (*backend, error) {
	sweeps := &sweepLog{}
	s := memstore.New(memstore.Options{SweepInterval: env.sweepEvery, Logger: slog.New(sweeps)})
	return &backend{store: s, space: heapBytes, spaceWhat: "Go heap in use (after GC)", sweepEvery: env.sweepEvery, sweeps: sweeps, close: s.Close}, nil
}

func heapBytes(context.Context) (int64, error) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), nil
}

func openBolt(env storeEnv) (*backend, error) {
	sweeps := &sweepLog{}
	s, err := boltstore.Open(env.boltPath, boltstore.Options{SweepInterval: env.sweepEvery, Logger: slog.New(sweeps)})
	if err != nil {
		return nil, err
	}
	size := func(context.Context) (int64, error) {
		fi, err := os.Stat(env.boltPath)
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	return &backend{store: s, space: size, spaceWhat: "bolt file size", sweepEvery: env.sweepEvery, sweeps: sweeps, close: s.Close}, nil
}

func openRedis(env storeEnv) (*backend, error) {
	opts, err := redis.ParseURL(env.redisURL)
	if err != nil {
		return nil, err
	}
	opts.PoolSize = 64
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s does not answer: %w", opts.Addr, err)
	}
	s := redisstore.New(c, redisstore.Options{Prefix: env.redisPrefix})
	used := func(ctx context.Context) (int64, error) {
		info, err := c.InfoMap(ctx, "memory").Result()
		if err != nil {
			return 0, err
		}
		v, ok := info["Memory"]["used_memory"]
		if !ok {
			return 0, errors.New("redis INFO memory has no used_memory")
		}
		return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	}
	b := &backend{store: s, space: used, spaceWhat: "Redis used_memory (whole server: other users of it add noise)", close: func() error {
		return errors.Join(s.Close(), c.Close())
	}}
	return b, nil
}

func openPostgres(env storeEnv) (*backend, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(env.postgresDSN)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL at %s does not answer: %w", cfg.ConnConfig.Host, err)
	}
	sweeps := &sweepLog{}
	s, err := pgstore.New(ctx, pool, pgstore.Options{TablePrefix: env.postgresPrefix, SweepInterval: env.sweepEvery, Logger: slog.New(sweeps)})
	if err != nil {
		pool.Close()
		return nil, err
	}
	sessions := pgx.Identifier{env.postgresPrefix + "sessions"}.Sanitize()
	size := func(ctx context.Context) (int64, error) {
		var n int64
		err := pool.QueryRow(ctx, "SELECT pg_total_relation_size($1::regclass)", sessions).Scan(&n)
		return n, err
	}
	b := &backend{store: s, space: size, spaceWhat: "pg_total_relation_size of the sessions table (heap, TOAST, indexes)", sweepEvery: env.sweepEvery, sweeps: sweeps,
		close: func() error {
			err := s.Close()
			for _, t := range []string{"sessions", "once", "schema"} {
				_, derr := pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{env.postgresPrefix + t}.Sanitize())
				err = errors.Join(err, derr)
			}
			pool.Close()
			return err
		}}
	return b, nil
}

// sizing counts the sealed bytes of the records created through it.
type sizing struct {
	store.Store
	n, bytes atomic.Int64
}

func (s *sizing) Create(ctx context.Context, rec *store.Record) error {
	s.n.Add(1)
	s.bytes.Add(int64(len(rec.Data)))
	return s.Store.Create(ctx, rec)
}
