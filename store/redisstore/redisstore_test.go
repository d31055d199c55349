package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
	"github.com/gatehouse-bff/gatehouse/store/storetest"
)

func TestConformance(t *testing.T) {
	c := redistest.Client(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s := redisstore.New(c, redisstore.Options{Prefix: redistest.Prefix(t, c)})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestDefaultPrefixIsHashTag(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	s := redisstore.New(c, redisstore.Options{})
	key := "default-prefix-" + session.NewID()
	t.Cleanup(func() { s.Delete(context.Background(), key) })
	rec := &store.Record{Key: key, Issuer: "iss-" + key, Subject: "sub", SID: "sid", ExpiresAt: time.Now().Add(time.Minute)}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, redisstore.DefaultPrefix+"s:"+key).Result(); err != nil || n != 1 {
		t.Fatalf("record not found under the default prefix: %d, %v", n, err)
	}
	if !strings.HasPrefix(redisstore.DefaultPrefix, "{") || !strings.Contains(redisstore.DefaultPrefix, "}") {
		t.Fatalf("DefaultPrefix %q carries no Cluster hash tag", redisstore.DefaultPrefix)
	}
	if _, err := s.DeleteMatching(ctx, store.Filter{Issuer: rec.Issuer, SID: "sid"}); err != nil {
		t.Fatal(err)
	}
}

// TestKeyNamesHoldNoIdentifiers dumps every key the store wrote and checks
// that no issuer, subject, sid or one-time key appears in a key name.
func TestKeyNamesHoldNoIdentifiers(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	prefix := redistest.Prefix(t, c)
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	secrets := []string{"https://idp.example/realm-marker", "subject-marker-8d1f", "sid-marker-77aa", "jti-marker-0c2e"}
	for i := range 3 {
		rec := &store.Record{
			Key:       session.KeyOf(fmt.Sprint("cookie", i)),
			Issuer:    secrets[0],
			Subject:   secrets[1],
			SID:       secrets[2],
			LastSeen:  time.Now(),
			ExpiresAt: time.Now().Add(time.Hour),
			Data:      []byte("sealed"),
		}
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.Once(ctx, secrets[3], time.Minute); !ok || err != nil {
		t.Fatalf("Once = %v, %v", ok, err)
	}
	keys, err := redistest.Keys(ctx, c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	// Three records, one subject set, one sid set, one one-time key.
	if len(keys) != 6 {
		t.Fatalf("store wrote %d keys, want 6: %q", len(keys), keys)
	}
	for _, k := range keys {
		for _, s := range secrets {
			for _, part := range []string{s, strings.TrimPrefix(s, "https://")} {
				if strings.Contains(k, part) {
					t.Errorf("key name %q contains the raw identifier %q", k, part)
				}
			}
		}
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Errorf("key %q has TTL %v (%v); every key must expire", k, ttl, err)
		}
	}
}

// TestIndexSetsOutliveTheirMembers: an index set expires no sooner than its
// longest-lived record, also after an Update moved that record's deadline.
func TestIndexSetsOutliveTheirMembers(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	prefix := redistest.Prefix(t, c)
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	now := time.Now()
	for i, ttl := range []time.Duration{time.Hour, 3 * time.Hour, 2 * time.Hour} {
		rec := &store.Record{Key: fmt.Sprint("k", i), Issuer: "iss", Subject: "sub", SID: "sid", ExpiresAt: now.Add(ttl)}
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	moved := &store.Record{Key: "k0", Issuer: "iss", Subject: "sub", SID: "sid", LastSeen: now, ExpiresAt: now.Add(5 * time.Hour)}
	if err := s.Update(ctx, moved); err != nil {
		t.Fatal(err)
	}
	keys, err := redistest.Keys(ctx, c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	sets := 0
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix+"sub:") && !strings.HasPrefix(k, prefix+"sid:") {
			continue
		}
		sets++
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl < 5*time.Hour-time.Minute {
			t.Errorf("index set %q expires in %v; its longest member lives 5h", k, ttl)
		}
	}
	if sets != 2 {
		t.Fatalf("found %d index sets; want 2", sets)
	}
}

// TestStaleIndexMembersAreTolerated removes a record behind the store's back,
// as Redis expiry does, and checks that listing and logout skip and clean it.
func TestStaleIndexMembersAreTolerated(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	prefix := redistest.Prefix(t, c)
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	for _, k := range []string{"gone", "kept"} {
		rec := &store.Record{Key: k, Issuer: "iss", Subject: "sub", SID: "sid", ExpiresAt: time.Now().Add(time.Hour), Data: []byte(k)}
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Del(ctx, prefix+"s:gone").Err(); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, store.Filter{Issuer: "iss", Subject: "sub"})
	if err != nil || len(list) != 1 || list[0].Key != "kept" {
		t.Fatalf("ListBySubject = %v, %v; want only kept", list, err)
	}
	var members []string
	keys, _ := redistest.Keys(ctx, c, prefix+"sub:")
	for _, k := range keys {
		m, err := c.HKeys(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, m...)
	}
	if strings.Join(members, ",") != "kept" {
		t.Fatalf("subject index members after listing = %q; want the stale member dropped", members)
	}
	got, err := s.DeleteMatching(ctx, store.Filter{Issuer: "iss", SID: "sid"})
	if err != nil || strings.Join(got, ",") != "kept" {
		t.Fatalf("DeleteBySID = %q, %v; want [kept]", got, err)
	}
	if left, _ := redistest.Keys(ctx, c, prefix); len(left) != 0 {
		t.Fatalf("keys left after deleting every record: %q", left)
	}
}

// TestInjectedClockDecidesLiveness: the store's clock, not only Redis expiry,
// decides whether a record is live.
func TestInjectedClockDecidesLiveness(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	now := time.Now()
	clock := now
	s := redisstore.New(c, redisstore.Options{Prefix: redistest.Prefix(t, c), Now: func() time.Time { return clock }})
	rec := &store.Record{Key: "k", Issuer: "iss", Subject: "sub", SID: "sid", LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(time.Hour)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get at the deadline = %v; want ErrNotFound", err)
	}
	if err := s.Update(ctx, rec); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update at the deadline = %v; want ErrNotFound", err)
	}
	if list, err := s.List(ctx, store.Filter{Issuer: "iss", Subject: "sub"}); err != nil || len(list) != 0 {
		t.Fatalf("ListBySubject at the deadline = %v, %v; want none", list, err)
	}
	if keys, err := s.DeleteMatching(ctx, store.Filter{Issuer: "iss", SID: "sid"}); err != nil || len(keys) != 0 {
		t.Fatalf("DeleteBySID at the deadline = %q, %v; want none reported", keys, err)
	}
}

func TestOnceRejectsNonPositiveTTL(t *testing.T) {
	c := redistest.Client(t)
	s := redisstore.New(c, redisstore.Options{Prefix: redistest.Prefix(t, c)})
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Once(t.Context(), "k", ttl); err == nil {
			t.Errorf("Once with ttl %v succeeded; want an error", ttl)
		}
	}
}

// TestServerOutage stops the private Redis: every operation fails with an
// error (never a silent "not found" or a false "first use"), and the store
// works again after Redis returns.
func TestServerOutage(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	s := redisstore.New(c, redisstore.Options{})
	ctx := t.Context()
	rec := &store.Record{Key: "k", Issuer: "iss", Subject: "sub", SID: "sid", LastSeen: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: []byte("d")}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping succeeded while Redis is down")
	}
	if _, err := s.Get(ctx, "k"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get while Redis is down = %v; want a store error", err)
	}
	if ok, err := s.Once(ctx, "jti", time.Minute); err == nil {
		t.Errorf("Once while Redis is down = %v, nil; want an error", ok)
	}
	if err := s.Update(ctx, rec); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update while Redis is down = %v; want a store error", err)
	}
	if _, err := s.DeleteMatching(ctx, store.Filter{Issuer: "iss", SID: "sid"}); err == nil {
		t.Error("DeleteBySID succeeded while Redis is down")
	}

	srv.Restart()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	// The private server keeps nothing across a restart.
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after restart = %v; want ErrNotFound", err)
	}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatalf("Create after restart (scripts must reload): %v", err)
	}
}

func BenchmarkGet(b *testing.B) {
	c := redistest.Client(b)
	ctx := context.Background()
	s := redisstore.New(c, redisstore.Options{Prefix: redistest.Prefix(b, c)})
	keys := make([]string, 256)
	for i := range keys {
		keys[i] = session.KeyOf(fmt.Sprint(i))
		if err := s.Create(ctx, &store.Record{Key: keys[i], Issuer: "iss", Subject: fmt.Sprint(i % 64), SID: fmt.Sprint(i), LastSeen: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: make([]byte, 2048)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// TestReadsTheHashLayout writes records the way earlier versions of the
// store did (a hash per record, a set per index) and checks that every
// operation still finds them, and that an update rewrites one in the
// current layout without losing its data.
func TestReadsTheHashLayout(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	prefix := redistest.Prefix(t, c)
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	ui, xi := redisstore.IndexHash("iss", "alice"), redisstore.IndexHash("iss", "sid-1")
	for _, k := range []string{"old-1", "old-2"} {
		err := c.HSet(ctx, prefix+"s:"+k,
			"iss", "iss", "sub", "alice", "sid", "sid-1", "ls", fmt.Sprintf("%d:0", exp.Add(-time.Hour).Unix()),
			"exp", fmt.Sprintf("%d:0", exp.Unix()), "em", exp.UnixMilli(), "d", "sealed-"+k, "ui", ui, "xi", xi, "app", "").Err()
		if err != nil {
			t.Fatal(err)
		}
		c.PExpireAt(ctx, prefix+"s:"+k, exp)
		c.SAdd(ctx, prefix+"sub:"+ui, k)
		c.SAdd(ctx, prefix+"sid:"+xi, k)
	}
	rec, err := s.Get(ctx, "old-1")
	if err != nil || string(rec.Data) != "sealed-old-1" || rec.Subject != "alice" || rec.SID != "sid-1" || !rec.ExpiresAt.Equal(exp) {
		t.Fatalf("Get of a hash record = %+v, %v", rec, err)
	}
	list, err := s.List(ctx, store.Filter{Issuer: "iss", Subject: "alice"})
	if err != nil || len(list) != 2 {
		t.Fatalf("List over a set index = %d records, %v; want 2", len(list), err)
	}
	// A new record of the same user joins the old set.
	if err := s.Create(ctx, &store.Record{Key: "new", Issuer: "iss", Subject: "alice", SID: "sid-1", ExpiresAt: exp, Data: []byte("sealed-new")}); err != nil {
		t.Fatal(err)
	}
	slid := &store.Record{Key: "old-1", Issuer: "iss", Subject: "alice", SID: "sid-1", LastSeen: time.Now().Truncate(time.Second), ExpiresAt: exp.Add(time.Minute)}
	if err := s.Update(ctx, slid); err != nil {
		t.Fatal(err)
	}
	if typ, _ := c.Type(ctx, prefix+"s:old-1").Result(); typ != "string" {
		t.Errorf("record after an update is a %s; want a string", typ)
	}
	rec, err = s.Get(ctx, "old-1")
	if err != nil || string(rec.Data) != "sealed-old-1" || !rec.ExpiresAt.Equal(slid.ExpiresAt) {
		t.Fatalf("Get after the update = %+v, %v; want the old data kept", rec, err)
	}
	if list, err := s.List(ctx, store.Filter{Issuer: "iss", SID: "sid-1"}); err != nil || len(list) != 3 {
		t.Fatalf("List by sid = %d records, %v; want 3", len(list), err)
	}
	got, err := s.DeleteMatching(ctx, store.Filter{Issuer: "iss", SID: "sid-1"})
	if err != nil || len(got) != 3 {
		t.Fatalf("DeleteMatching by sid = %q, %v; want 3 keys", got, err)
	}
	if left, _ := redistest.Keys(ctx, c, prefix); len(left) != 0 {
		t.Fatalf("keys left after logging out every record: %q", left)
	}
}
