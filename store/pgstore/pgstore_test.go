package pgstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-bff/gatehouse/internal/pgtest"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/pgstore"
)

// open returns a store on dsn with no background sweep unless opts says
// otherwise, closed when t ends.
func open(t *testing.T, dsn string, opts pgstore.Options) lockingStore {
	t.Helper()
	if opts.SweepInterval == 0 {
		opts.SweepInterval = -1
	}
	s, err := pgstore.Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(lockingStore)
}

// pool returns a pool of its own on dsn, closed when t ends.
func pool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatalf("pgxpool.New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func rec(key, sub, sid string, ttl time.Duration) *store.Record {
	now := time.Now()
	return &store.Record{
		Key: key, Issuer: "https://idp.example", Subject: sub, SID: sid,
		LastSeen: now, ExpiresAt: now.Add(ttl), Data: []byte("sealed:" + key + ":" + randHex(4)),
	}
}

func mustCreate(t *testing.T, s store.Store, r *store.Record) {
	t.Helper()
	if err := s.Create(t.Context(), r); err != nil {
		t.Fatalf("Create(%q): %v", r.Key, err)
	}
}

func wantRecord(t *testing.T, s store.Store, want *store.Record) {
	t.Helper()
	got, err := s.Get(t.Context(), want.Key)
	if err != nil {
		t.Fatalf("Get(%q): %v", want.Key, err)
	}
	if got.Key != want.Key || got.App != want.App || got.Issuer != want.Issuer ||
		got.Subject != want.Subject || got.SID != want.SID || !bytes.Equal(got.Data, want.Data) {
		t.Errorf("Get(%q) = %+v; want %+v", want.Key, got, want)
	}
	if !got.LastSeen.Equal(want.LastSeen.Truncate(time.Microsecond)) || !got.ExpiresAt.Equal(want.ExpiresAt.Truncate(time.Microsecond)) {
		t.Errorf("Get(%q) times = %v, %v; want %v, %v", want.Key, got.LastSeen, got.ExpiresAt, want.LastSeen, want.ExpiresAt)
	}
}

func wantGone(t *testing.T, s store.Store, key string) {
	t.Helper()
	if r, err := s.Get(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %+v, %v; want store.ErrNotFound", key, r, err)
	}
}

func wantKeys(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if got == nil || !slices.Equal(got, want) {
		t.Errorf("%s = %q; want %q (non-nil)", what, got, want)
	}
}

func listKeys(t *testing.T, s store.Store, f store.Filter) []string {
	t.Helper()
	rs, err := s.List(t.Context(), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	if rs == nil {
		t.Fatalf("List(%+v) = nil; want a non-nil slice", f)
	}
	keys := []string{}
	for _, r := range rs {
		keys = append(keys, r.Key)
	}
	return keys
}

func count(t *testing.T, p *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := p.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestRoundTripOddValues(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.DSN(t), pgstore.Options{})
	for i, odd := range []string{"plain", "nul\x00byte", "unicode-ключ-🔑", "\xff\xfe not utf-8", "quote ' and \\", strings.Repeat("long", 200)} {
		r := rec(odd, "sub "+odd, "sid "+odd, time.Hour)
		r.App, r.Issuer = "app "+odd, "https://idp.example/"+odd
		mustCreate(t, s, r)
		wantRecord(t, s, r)
		wantKeys(t, fmt.Sprint("List ", i), listKeys(t, s, store.Filter{App: r.App, Issuer: r.Issuer, Subject: r.Subject, SID: r.SID}), r.Key)
	}
	empty := rec("empty-data", "alice", "", time.Hour)
	empty.Data = nil
	mustCreate(t, s, empty)
	got, err := s.Get(t.Context(), empty.Key)
	if err != nil || len(got.Data) != 0 || got.SID != "" || got.App != "" {
		t.Fatalf("Get(empty) = %+v, %v", got, err)
	}
	if _, err := s.Get(t.Context(), "never-stored"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) = %v; want store.ErrNotFound", err)
	}
}

func TestCreateReplacesExistingKey(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.DSN(t), pgstore.Options{})
	first := rec("k", "alice", "sid-1", time.Hour)
	mustCreate(t, s, first)
	second := rec("k", "bob", "sid-2", 2*time.Hour)
	mustCreate(t, s, second)
	wantRecord(t, s, second)
	wantKeys(t, "List(alice)", listKeys(t, s, store.Filter{Issuer: first.Issuer, Subject: "alice"}))
	wantKeys(t, "List(bob)", listKeys(t, s, store.Filter{Issuer: first.Issuer, Subject: "bob"}), "k")
}

func TestExpiredRecordsAreInvisible(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	s := open(t, pgtest.DSN(t), pgstore.Options{Now: clock.Now})
	short := rec("short", "alice", "sid-1", time.Minute)
	long := rec("long", "alice", "sid-1", time.Hour)
	past := rec("past", "alice", "sid-1", -time.Second)
	zero := rec("zero", "alice", "sid-1", time.Hour)
	zero.ExpiresAt = time.Time{}
	for _, r := range []*store.Record{short, long, past, zero} {
		mustCreate(t, s, r)
	}
	wantGone(t, s, past.Key)
	wantGone(t, s, zero.Key)
	f := store.Filter{Issuer: short.Issuer, Subject: "alice"}
	wantKeys(t, "List", listKeys(t, s, f), "short", "long")

	clock.Advance(2 * time.Minute)
	wantGone(t, s, short.Key)
	wantRecord(t, s, long)
	wantKeys(t, "List after 2m", listKeys(t, s, f), "long")
	wantKeys(t, "List by sid after 2m", listKeys(t, s, store.Filter{Issuer: short.Issuer, SID: "sid-1"}), "long")
}

func TestUpdateNeverResurrects(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	s := open(t, pgtest.DSN(t), pgstore.Options{Now: clock.Now})
	ctx := t.Context()

	if err := s.Update(ctx, rec("missing", "alice", "", time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update(missing) = %v; want store.ErrNotFound", err)
	}
	wantGone(t, s, "missing")

	deleted := rec("deleted", "alice", "", time.Hour)
	mustCreate(t, s, deleted)
	if err := s.Delete(ctx, deleted.Key); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, deleted.Key); err != nil {
		t.Fatalf("Delete of a missing record = %v; want nil", err)
	}
	if err := s.Update(ctx, deleted); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update(deleted) = %v; want store.ErrNotFound", err)
	}
	wantGone(t, s, deleted.Key)

	expiring := rec("expiring", "alice", "", time.Minute)
	mustCreate(t, s, expiring)
	clock.Advance(2 * time.Minute)
	revived := *expiring
	revived.ExpiresAt = time.Now().Add(time.Hour)
	if err := s.Update(ctx, &revived); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update(expired) = %v; want store.ErrNotFound", err)
	}
	wantGone(t, s, expiring.Key)

	live := rec("live", "alice", "sid-1", time.Hour)
	mustCreate(t, s, live)
	moved := *live
	moved.Subject, moved.SID, moved.App, moved.Data = "bob", "sid-2", "app-2", []byte("updated")
	moved.ExpiresAt = live.ExpiresAt.Add(time.Hour)
	if err := s.Update(ctx, &moved); err != nil {
		t.Fatalf("Update(live): %v", err)
	}
	wantRecord(t, s, &moved)
	wantKeys(t, "List(alice)", listKeys(t, s, store.Filter{Issuer: live.Issuer, Subject: "alice"}))
	wantKeys(t, "List(sid-2)", listKeys(t, s, store.Filter{Issuer: live.Issuer, SID: "sid-2"}), "live")
}

func TestDeleteMatching(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	s := open(t, dsn, pgstore.Options{})
	ctx := t.Context()
	iss := "https://idp.example"
	recs := []*store.Record{
		rec("a1", "alice", "sid-1", time.Hour),
		rec("a2", "alice", "sid-2", time.Hour),
		rec("a3", "alice", "", time.Hour),
		rec("a-dead", "alice", "sid-1", -time.Minute),
		rec("b1", "bob", "sid-1", time.Hour),
		rec("c1", "carol", "sid-9", time.Hour),
		rec("c2", "carol", "sid-9", time.Hour),
	}
	recs[2].App = "admin"
	recs[5].App = "admin"
	other := rec("other-iss", "alice", "sid-1", time.Hour)
	other.Issuer = "https://other.example"
	for _, r := range append(recs, other) {
		mustCreate(t, s, r)
	}

	for _, bad := range []store.Filter{{}, {Issuer: iss}, {Subject: "alice"}, {SID: "sid-1", App: "admin"}} {
		if _, err := s.DeleteMatching(ctx, bad); !errors.Is(err, store.ErrInvalidFilter) {
			t.Errorf("DeleteMatching(%+v) = %v; want store.ErrInvalidFilter", bad, err)
		}
		if _, err := s.List(ctx, bad); !errors.Is(err, store.ErrInvalidFilter) {
			t.Errorf("List(%+v) = %v; want store.ErrInvalidFilter", bad, err)
		}
	}

	del := func(f store.Filter, want ...string) {
		t.Helper()
		got, err := s.DeleteMatching(ctx, f)
		if err != nil {
			t.Fatalf("DeleteMatching(%+v): %v", f, err)
		}
		wantKeys(t, fmt.Sprintf("DeleteMatching(%+v)", f), got, want...)
		for _, k := range want {
			wantGone(t, s, k)
		}
	}
	del(store.Filter{Issuer: iss, Subject: "nobody"})
	// Subject and sid together must both match; the expired a-dead goes
	// too but is not reported.
	del(store.Filter{Issuer: iss, Subject: "alice", SID: "sid-1"}, "a1")
	if n := count(t, pool(t, dsn), "gatehouse_sessions"); n != 6 {
		t.Errorf("%d rows left; want 6 of 8 (a-dead deleted with a1)", n)
	}
	// By sid alone: only this issuer's.
	del(store.Filter{Issuer: iss, SID: "sid-1"}, "b1")
	wantRecord(t, s, other)
	// By app and subject.
	del(store.Filter{App: "admin", Issuer: iss, Subject: "alice"}, "a3")
	wantRecord(t, s, recs[1])
	// By app and sid.
	del(store.Filter{App: "web", Issuer: iss, SID: "sid-9"})
	del(store.Filter{App: "admin", Issuer: iss, SID: "sid-9"}, "c1")
	// By subject, every app.
	del(store.Filter{Issuer: iss, Subject: "carol"}, "c2")
	del(store.Filter{Issuer: iss, Subject: "alice"}, "a2")
	wantRecord(t, s, other)
}

func TestListSelects(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.DSN(t), pgstore.Options{})
	iss := "https://idp.example"
	for _, r := range []*store.Record{
		rec("w1", "alice", "sid-1", time.Hour),
		rec("w2", "alice", "sid-2", time.Hour),
		rec("x1", "alice", "sid-3", time.Hour),
		rec("b1", "bob", "sid-1", time.Hour),
	} {
		if r.Key[0] == 'x' {
			r.App = "admin"
		}
		mustCreate(t, s, r)
	}
	for _, tc := range []struct {
		f    store.Filter
		want []string
	}{
		{store.Filter{Issuer: iss, Subject: "alice"}, []string{"w1", "w2", "x1"}},
		{store.Filter{Issuer: iss, Subject: "alice", App: "admin"}, []string{"x1"}},
		{store.Filter{Issuer: iss, Subject: "alice", App: "nope"}, nil},
		{store.Filter{Issuer: iss, SID: "sid-1"}, []string{"w1", "b1"}},
		{store.Filter{Issuer: iss, SID: "sid-1", Subject: "bob"}, []string{"b1"}},
		{store.Filter{Issuer: iss + "/", Subject: "alice"}, nil},
	} {
		wantKeys(t, fmt.Sprintf("List(%+v)", tc.f), listKeys(t, s, tc.f), tc.want...)
	}
}

func TestOnceAcrossStores(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	clock := testkit.NewClock(time.Now())
	a := open(t, dsn, pgstore.Options{Now: clock.Now})
	b := open(t, dsn, pgstore.Options{Now: clock.Now})
	ctx := t.Context()
	once := func(s store.Store, key string, ttl time.Duration, want bool) {
		t.Helper()
		got, err := s.Once(ctx, key, ttl)
		if err != nil || got != want {
			t.Fatalf("Once(%q, %v) = %v, %v; want %v", key, ttl, got, err, want)
		}
	}
	once(a, "state-1", time.Minute, true)
	once(b, "state-1", time.Minute, false)
	once(a, "state-1", time.Hour, false)
	once(b, "state-2", time.Minute, true)
	once(a, "nul\x00", time.Minute, true)
	once(b, "nul\x00", time.Minute, false)
	once(b, "nul", time.Minute, true)
	clock.Advance(2 * time.Minute)
	once(b, "state-1", time.Minute, true)
	once(a, "state-1", time.Minute, false)
	if _, err := a.Once(ctx, "zero-ttl", 0); err == nil {
		t.Error("Once with a zero ttl succeeded")
	}

	// Many attempts at once from both stores: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			ok, err := s.Once(ctx, "raced", time.Minute)
			if err != nil {
				t.Errorf("Once: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 16 concurrent Once calls won; want exactly 1", wins.Load())
	}
}

func TestLockExcludesAcrossPools(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	stores := []lockingStore{open(t, dsn, pgstore.Options{}), open(t, dsn, pgstore.Options{})}
	var inside, maxInside, entries atomic.Int32
	var wg sync.WaitGroup
	for i := range 6 {
		s := stores[i%2]
		wg.Go(func() {
			for range 5 {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				unlock, err := s.Lock(ctx, "session-key", 30*time.Second)
				if err != nil {
					cancel()
					t.Errorf("Lock: %v", err)
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				entries.Add(1)
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if maxInside.Load() != 1 || entries.Load() != 30 {
		t.Fatalf("%d holders at once over %d entries; want 1 over 30", maxInside.Load(), entries.Load())
	}

	// Another name is a different lock.
	unlock, err := stores[0].Lock(t.Context(), "session-key", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	other, err := stores[1].Lock(t.Context(), "other-key", time.Minute)
	if err != nil {
		t.Fatalf("Lock(other-key) while session-key is held: %v", err)
	}
	other()
	other() // a second unlock does nothing

	// A waiter gives up when its context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if u, err := stores[1].Lock(ctx, "session-key", time.Minute); err == nil {
		u()
		t.Fatal("Lock succeeded while another pool holds the lock")
	}
}

func TestLockFreesItselfAfterTTL(t *testing.T) {
	t.Parallel()
	for _, serverOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("serverOnly=%v", serverOnly), func(t *testing.T) {
			dsn := pgtest.DSN(t)
			holder := open(t, dsn, pgstore.Options{})
			if serverOnly {
				pgstore.ServerExpiryOnly(holder)
			}
			waiter := open(t, dsn, pgstore.Options{})
			abandoned, err := holder.Lock(t.Context(), "abandoned", 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			// Should the test fail, let go before the store closes its pool.
			t.Cleanup(abandoned)
			// abandoned is not called until the waiter got the lock.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			unlock, err := waiter.Lock(ctx, "abandoned", time.Minute)
			if err != nil {
				t.Fatalf("Lock after the holder's ttl: %v", err)
			}
			unlock()
			// Only now, late, does the holder let go of its connection;
			// the server had already ended its session.
			abandoned()
			// The holder's store keeps working: the broken connection was
			// dropped from its pool.
			mustCreate(t, holder, rec("after", "alice", "", time.Hour))
			unlock, err = holder.Lock(ctx, "abandoned", time.Minute)
			if err != nil {
				t.Fatalf("holder's Lock after its own lock expired: %v", err)
			}
			unlock()
		})
	}
}

// TestLocksLeaveConnectionsForReads: refreshes waiting on a lock must not
// take every pooled connection, or the holder could not save its refresh.
func TestLocksLeaveConnectionsForReads(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	p := pool(t, dsn+"&pool_max_conns=2")
	st, err := pgstore.New(t.Context(), p, pgstore.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := st.(lockingStore)
	defer s.Close()
	unlock, err := s.Lock(t.Context(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancelWait := context.WithCancel(t.Context())
	waited := make(chan error, 4)
	for range 4 {
		go func() {
			u, err := s.Lock(waitCtx, "k", time.Minute)
			if err == nil {
				u()
			}
			waited <- err
		}()
	}
	mustCreate(t, s, rec("r", "alice", "", time.Hour))
	if _, err := s.Get(t.Context(), "r"); err != nil {
		t.Fatalf("Get while locks wait: %v", err)
	}
	cancelWait()
	for range 4 {
		<-waited
	}
	unlock()
	// The pool is the caller's: Close leaves it open.
	s.Close()
	if err := p.Ping(t.Context()); err != nil {
		t.Fatalf("pool closed by Store.Close: %v", err)
	}
}

func TestSweepInBatches(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	s := open(t, dsn, pgstore.Options{})
	p := pool(t, dsn)
	for i := range 10 {
		mustCreate(t, s, rec(fmt.Sprint("dead-", i), "alice", "sid", -time.Duration(i+1)*time.Minute))
	}
	live := rec("live", "alice", "sid", time.Hour)
	later := rec("later", "alice", "sid", 3*time.Hour)
	mustCreate(t, s, live)
	mustCreate(t, s, later)
	if ok, err := s.Once(t.Context(), "jti-old", time.Millisecond); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := s.Once(t.Context(), "jti-new", time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}

	pgstore.SetSweepBatch(s, 3)
	removed, batches, err := pgstore.Sweep(s, t.Context(), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if removed != 10 || batches != 4 {
		t.Errorf("Sweep removed %d in %d statements; want 10 in 4 of at most 3", removed, batches)
	}
	if n := count(t, p, "gatehouse_sessions"); n != 2 {
		t.Errorf("%d session rows after sweep; want 2", n)
	}
	if n := count(t, p, "gatehouse_once"); n != 1 {
		t.Errorf("%d once rows after sweep; want 1", n)
	}
	wantRecord(t, s, live)
	if ok, _ := s.Once(t.Context(), "jti-new", time.Hour); ok {
		t.Error("sweep removed a live one-time key")
	}

	removed, _, err = pgstore.Sweep(s, t.Context(), time.Now().Add(2*time.Hour))
	if err != nil || removed != 1 {
		t.Errorf("Sweep(+2h) = %d, %v; want 1", removed, err)
	}
	wantRecord(t, s, later)
}

func TestBackgroundSweepAndClose(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	p := pool(t, dsn)
	s, err := pgstore.Open(t.Context(), dsn, pgstore.Options{SweepInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustCreate(t, s, rec(fmt.Sprint("dead-", i), "alice", "", -time.Minute))
	}
	mustCreate(t, s, rec("live", "alice", "", time.Hour))
	n := 0
	for range 500 {
		if n = count(t, p, "gatehouse_sessions"); n == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n != 1 {
		t.Fatalf("%d rows after the background sweep had time to run; want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Close closed the pool Open made.
	if err := s.Ping(context.Background()); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

func TestCloseStopsSweeper(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	p := pool(t, dsn)
	s, err := pgstore.New(t.Context(), p, pgstore.Options{SweepInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, rec("dead-before", "alice", "", -time.Minute))
	for range 500 {
		if count(t, p, "gatehouse_sessions") == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(t, p, "gatehouse_sessions"); n != 0 {
		t.Fatalf("the sweeper left %d expired rows", n)
	}
	s.Close()
	mustCreate(t, s, rec("dead-after", "alice", "", -time.Minute))
	// Forty intervals: a sweeper still running would have removed it.
	time.Sleep(200 * time.Millisecond)
	if n := count(t, p, "gatehouse_sessions"); n != 1 {
		t.Fatalf("%d rows after Close; want the expired one kept, as no sweeper runs", n)
	}
}

func TestPingFollowsDatabase(t *testing.T) {
	t.Parallel()
	proxy, dsn := pgtest.NewProxy(t, pgtest.DSN(t))
	s := open(t, dsn, pgstore.Options{Timeout: time.Second})
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	mustCreate(t, s, rec("k", "alice", "", time.Hour))

	proxy.Stop()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded while the database is unreachable")
	}
	if _, err := s.Get(ctx, "k"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get while unreachable = %v; want an error other than ErrNotFound", err)
	}

	proxy.Start()
	var err error
	for range 100 {
		if err = s.Ping(ctx); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Ping after the database came back: %v", err)
	}
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get after recovery: %v", err)
	}
}

func TestRestartKeepsSessions(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	first, err := pgstore.Open(t.Context(), dsn, pgstore.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := rec("survivor", "alice", "sid-1", time.Hour)
	mustCreate(t, first, r)
	if ok, err := first.Once(t.Context(), "state", time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	first.Close()

	second := open(t, dsn, pgstore.Options{})
	wantRecord(t, second, r)
	if ok, err := second.Once(t.Context(), "state", time.Hour); ok || err != nil {
		t.Fatalf("Once after restart = %v, %v; want a replay", ok, err)
	}
}

// TestDumpHoldsNoSecrets writes sessions the way Gatehouse does (the key
// hashes the cookie, the data is sealed) and one-time keys, then dumps
// every column of every table as text and looks for the cookie values and
// one-time keys in any encoding.
func TestDumpHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	s := open(t, dsn, pgstore.Options{})
	var secrets []string
	for i := range 3 {
		cookie := "cookie-" + randHex(16)
		sum := sha256.Sum256([]byte(cookie))
		r := rec(hex.EncodeToString(sum[:]), "alice", "sid", time.Hour)
		r.Data = make([]byte, 256)
		rand.Read(r.Data)
		mustCreate(t, s, r)
		state := fmt.Sprint("login-state-", i, "-", randHex(8))
		if ok, err := s.Once(t.Context(), state, time.Hour); !ok || err != nil {
			t.Fatal(ok, err)
		}
		secrets = append(secrets, cookie, state)
	}
	p := pool(t, dsn)
	var dump strings.Builder
	for _, table := range []string{"gatehouse_sessions", "gatehouse_once", "gatehouse_schema"} {
		rows, err := p.Query(t.Context(), "SELECT t::text FROM "+table+" t")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			dump.WriteString(l + "\n")
		}
	}
	text := strings.ToLower(dump.String())
	if !strings.Contains(text, "\\x") {
		t.Fatalf("dump holds no bytea values; the test reads the wrong tables:\n%s", text)
	}
	for _, sec := range secrets {
		for _, enc := range []string{sec, hex.EncodeToString([]byte(sec))} {
			if strings.Contains(text, strings.ToLower(enc)) {
				t.Errorf("dump holds %q", enc)
			}
		}
	}
}

func TestMigrateConcurrentIdempotentAndVersioned(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := pgstore.Open(t.Context(), dsn, pgstore.Options{SweepInterval: -1})
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	p := pool(t, dsn)
	if n := count(t, p, "gatehouse_schema"); n != 1 {
		t.Fatalf("%d schema versions recorded; want 1", n)
	}
	open(t, dsn, pgstore.Options{})
	if n := count(t, p, "gatehouse_schema"); n != 1 {
		t.Fatalf("%d schema versions after reopening; want 1", n)
	}

	// Another prefix is another set of tables.
	other := open(t, dsn, pgstore.Options{TablePrefix: "tenant_b_"})
	mustCreate(t, other, rec("k", "alice", "", time.Hour))
	if n := count(t, p, "tenant_b_sessions"); n != 1 {
		t.Fatalf("tenant_b_sessions has %d rows; want 1", n)
	}
	if n := count(t, p, "gatehouse_sessions"); n != 0 {
		t.Fatalf("gatehouse_sessions has %d rows; want 0", n)
	}

	// Tables a newer Gatehouse migrated are refused.
	if _, err := p.Exec(t.Context(), "INSERT INTO gatehouse_schema (version) VALUES (99)"); err != nil {
		t.Fatal(err)
	}
	if s, err := pgstore.Open(t.Context(), dsn, pgstore.Options{SweepInterval: -1}); err == nil {
		s.Close()
		t.Fatal("Open accepted tables of schema version 99")
	}
}

func TestOptionsAndDSNErrors(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	for _, prefix := range []string{"Upper_", "has-dash", "1digit", strings.Repeat("a", 41), `quote"`} {
		if s, err := pgstore.Open(t.Context(), dsn, pgstore.Options{TablePrefix: prefix, SweepInterval: -1}); err == nil {
			s.Close()
			t.Errorf("Open accepted table prefix %q", prefix)
		}
	}
	if s, err := pgstore.New(t.Context(), pool(t, dsn+"&pool_max_conns=1"), pgstore.Options{SweepInterval: -1}); err == nil {
		s.Close()
		t.Error("New accepted a pool of one connection, which a lock would take whole")
	}
	if s, err := pgstore.Open(t.Context(), dsn, pgstore.Options{Timeout: -time.Second}); err == nil {
		s.Close()
		t.Error("Open accepted a negative timeout")
	}
	const password = "hunter2-very-secret"
	for _, bad := range []string{
		"postgres://gatehouse:" + password + "@127.0.0.1:5432/test?sslmode=bogus",
		"host=127.0.0.1 password=" + password + " sslmode=bogus",
		"postgres://gatehouse:" + password + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=2",
	} {
		s, err := pgstore.Open(t.Context(), bad, pgstore.Options{SweepInterval: -1})
		if err == nil {
			s.Close()
			t.Errorf("Open succeeded on a bad DSN")
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("Open error quotes the password: %v", err)
		}
	}
}

func TestTimeoutBoundsCalls(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	s := open(t, dsn, pgstore.Options{Timeout: 200 * time.Millisecond})
	mustCreate(t, s, rec("k", "alice", "", time.Hour))
	// Hold the row lock so that Update has to wait: the store's timeout,
	// not the test's context, must end the wait.
	p := pool(t, dsn)
	tx, err := p.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), "SELECT 1 FROM gatehouse_sessions WHERE key = 'k' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	err = s.Update(t.Context(), rec("k", "alice", "", time.Hour))
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update against a held row lock = %v; want a timeout error", err)
	}
}

// lockingStore is what pgstore.Open returns: a store and its lock.
type lockingStore interface {
	store.Store
	store.Locker
}
