package benchkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// StoreEnv is where a store may keep its data: a private directory and the
// Redis server under test.
type StoreEnv struct {
	Dir      string
	RedisURL string
	// RedisPrefix namespaces the Redis keys; empty means a random one.
	RedisPrefix string
}

// RedisURL is the Redis server the programs use: GATEHOUSE_TEST_REDIS_URL,
// else database 9 of the local server.
func RedisURL() string {
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/9"
}

// StoreKind is one session store the programs can measure: how to point a
// configuration at it, and whether its backend is reachable.
type StoreKind struct {
	Name string
	// Configure points cfg at a fresh, private instance of the store.
	Configure func(cfg *config.Config, env StoreEnv)
	// Check reports why the store cannot be measured here, or nil.
	Check func(env StoreEnv) error
}

// Stores lists every store the programs measure, in table order. A new
// backend is one entry.
var Stores = []StoreKind{
	{Name: "memory", Configure: func(cfg *config.Config, _ StoreEnv) { cfg.Session.Store = "memory" }},
	{Name: "bolt", Configure: func(cfg *config.Config, env StoreEnv) {
		cfg.Session.Store, cfg.Session.BoltPath = "bolt", filepath.Join(env.Dir, "gatehouse-"+randHex(4)+".db")
	}},
	{Name: "redis", Configure: func(cfg *config.Config, env StoreEnv) {
		cfg.Session.Store, cfg.Session.RedisURL = "redis", env.RedisURL
		cfg.Redis.KeyPrefix = env.RedisPrefix
		if cfg.Redis.KeyPrefix == "" {
			cfg.Redis.KeyPrefix = NewRedisPrefix()
		}
	}, Check: pingRedis},
	{Name: "postgres", Configure: func(cfg *config.Config, _ StoreEnv) {
		cfg.Session.Store, cfg.Postgres.DSN = config.StorePostgres, PostgresDSN()
	}, Check: pingPostgres},
}

// PostgresDSN is the PostgreSQL database the programs use:
// GATEHOUSE_TEST_POSTGRES_DSN, else the local test database.
func PostgresDSN() string {
	if d := os.Getenv("GATEHOUSE_TEST_POSTGRES_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func pingPostgres(StoreEnv) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PostgresDSN())
	if err != nil {
		return fmt.Errorf("PostgreSQL does not answer (GATEHOUSE_TEST_POSTGRES_DSN)")
	}
	return conn.Close(ctx)
}

// StoreByName returns the entry of Stores called name.
func StoreByName(name string) (StoreKind, error) {
	for _, k := range Stores {
		if k.Name == name {
			return k, nil
		}
	}
	names := make([]string, len(Stores))
	for i, k := range Stores {
		names[i] = k.Name
	}
	return StoreKind{}, fmt.Errorf("benchkit: unknown store %q (have %v)", name, names)
}

func pingRedis(env StoreEnv) error {
	opts, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		return fmt.Errorf("benchkit: redis url: %w", err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("benchkit: redis at %s does not answer: %w", opts.Addr, err)
	}
	return nil
}

// DropRedisPrefix deletes every key under prefix (a benchmark's private
// namespace) from the Redis server at redisURL.
func DropRedisPrefix(redisURL, prefix string) error {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 10000).Iterator()
	batch := make([]string, 0, 1000)
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := c.Unlink(ctx, batch...).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

// NewRedisPrefix returns a fresh private Redis key prefix.
func NewRedisPrefix() string { return "{gatehouse-bench-" + randHex(4) + "}:" }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
