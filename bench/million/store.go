package main

// Every use of a session store's own API by this program is in this file,
// so that following a change of the store contract touches nothing else.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store/boltstore"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
	"github.com/redis/go-redis/v9"
)

// backend is an open session store and the ways this program measures it.
type backend struct {
	store session.Store
	// space returns the bytes the store's data takes now (what "now"
	// means depends on the store: heap, file size, Redis used_memory).
	space func(ctx context.Context) (int64, error)
	// spaceWhat names what space measures.
	spaceWhat string
	// sweep removes expired records now, when the store lets a caller do
	// that; nil when the store expires records by itself only.
	sweep func(ctx context.Context, now time.Time) (int, error)
	// autoSweep is how often the store sweeps by itself (0: never, or
	// the backend does it continuously, as Redis does).
	autoSweep time.Duration
	close     func() error
}

// sweeper is implemented by stores that let their caller run the sweep.
type sweeper interface {
	Sweep(ctx context.Context, now time.Time) (int, error)
}

// openers open each store by name. A new backend is one entry.
var openers = map[string]func(env storeEnv) (*backend, error){
	"memory": openMemory,
	"bolt":   openBolt,
	"redis":  openRedis,
}

// storeEnv is where stores keep their data.
type storeEnv struct {
	boltPath    string
	redisURL    string
	redisPrefix string
}

func openMemory(storeEnv) (*backend, error) {
	s := memstore.New(memstore.Options{SweepInterval: -1})
	return &backend{store: s, space: heapBytes, spaceWhat: "Go heap in use (after GC)", sweep: s.Sweep, close: s.Close}, nil
}

func heapBytes(context.Context) (int64, error) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), nil
}

func openBolt(env storeEnv) (*backend, error) {
	s, err := boltstore.Open(env.boltPath, boltstore.Options{SweepInterval: -1})
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
	return &backend{store: s, space: size, spaceWhat: "bolt file size", sweep: s.Sweep, close: s.Close}, nil
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
	if sw, ok := any(s).(sweeper); ok {
		b.sweep = sw.Sweep
	}
	return b, nil
}

// sizing counts the sealed bytes of the records created through it.
type sizing struct {
	session.Store
	n, bytes atomic.Int64
}

func (s *sizing) Create(ctx context.Context, rec *session.Record) error {
	s.n.Add(1)
	s.bytes.Add(int64(len(rec.Data)))
	return s.Store.Create(ctx, rec)
}

// getRecord reads the record under key straight from the store.
func getRecord(ctx context.Context, st session.Store, key string) error {
	_, err := st.Get(ctx, key)
	return err
}
