package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
	"github.com/gatehouse-bff/gatehouse/store/storetest"
)

func TestConformanceWithLocalCache(t *testing.T) {
	c := redistest.Client(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s := redisstore.New(c, redisstore.Options{Prefix: redistest.Prefix(t, c), LocalCacheTTL: time.Minute})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func record(key string) *store.Record {
	return &store.Record{Key: key, Issuer: "https://op", Subject: "alice", SID: "sid-" + key,
		LastSeen: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: []byte("sealed-" + key)}
}

// eventually polls cond for up to 5 s: invalidations travel by pub/sub.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCaching lets the store's subscription come up, so that its cache is
// in use.
func waitCaching(t *testing.T, s store.Store, ctx context.Context) {
	t.Helper()
	probe := record("probe")
	s.Create(ctx, probe)
	eventually(t, "cache subscription", func() bool {
		s.Get(ctx, probe.Key)
		return redisstore.Cached(s, probe.Key)
	})
}

func TestLocalCacheNeverOutlivesAnEndAnywhere(t *testing.T) {
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	ctx := context.Background()
	// Two stores on one Redis stand for two replicas.
	a := redisstore.New(c, redisstore.Options{Prefix: prefix, LocalCacheTTL: time.Hour})
	b := redisstore.New(c, redisstore.Options{Prefix: prefix, LocalCacheTTL: time.Hour})
	t.Cleanup(func() { a.Close(); b.Close() })
	waitCaching(t, a, ctx)
	waitCaching(t, b, ctx)

	for _, end := range []struct {
		name string
		do   func(key string) error
	}{
		{"delete", func(k string) error { return b.Delete(ctx, k) }},
		{"delete by sid", func(k string) error {
			_, err := b.DeleteMatching(ctx, store.Filter{Issuer: "https://op", SID: "sid-" + k})
			return err
		}},
		{"delete by subject", func(k string) error {
			_, err := b.DeleteMatching(ctx, store.Filter{Issuer: "https://op", Subject: "alice"})
			return err
		}},
	} {
		t.Run(end.name, func(t *testing.T) {
			rec := record("k-" + end.name)
			if err := a.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Get(ctx, rec.Key); err != nil {
				t.Fatal(err)
			}
			if !redisstore.Cached(a, rec.Key) {
				t.Fatal("record not cached; the test would prove nothing")
			}
			if err := end.do(rec.Key); err != nil {
				t.Fatal(err)
			}
			eventually(t, "eviction on the other replica", func() bool {
				_, err := a.Get(ctx, rec.Key)
				return errors.Is(err, store.ErrNotFound)
			})
			// Once gone, it stays gone: no later read brings it back.
			for range 20 {
				if _, err := a.Get(ctx, rec.Key); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("ended record read again: %v", err)
				}
			}
		})
	}

	// An update on one replica is what the other reads next.
	rec := record("k-update")
	a.Create(ctx, rec)
	a.Get(ctx, rec.Key)
	rec2 := *rec
	rec2.Data = []byte("sealed-new")
	if err := b.Update(ctx, &rec2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "updated data on the other replica", func() bool {
		got, err := a.Get(ctx, rec.Key)
		return err == nil && string(got.Data) == "sealed-new"
	})
	// A fresh read bypasses the cache.
	got, err := a.Get(session.WithFreshRead(ctx), rec.Key)
	if err != nil || string(got.Data) != "sealed-new" {
		t.Errorf("fresh read = %v, %v", got, err)
	}
}

func TestLocalCacheOffWhileRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	s := redisstore.New(c, redisstore.Options{LocalCacheTTL: time.Hour})
	t.Cleanup(func() { s.Close() })
	waitCaching(t, s, ctx)
	rec := record("k")
	s.Create(ctx, rec)
	s.Get(ctx, rec.Key)
	if !redisstore.Cached(s, rec.Key) {
		t.Fatal("record not cached")
	}
	srv.Stop()
	// The broken subscription turns the cache off: reads fail rather than
	// serve what Redis may since have ended.
	eventually(t, "cache off with Redis down", func() bool {
		_, err := s.Get(ctx, rec.Key)
		return err != nil && !errors.Is(err, store.ErrNotFound)
	})
}
