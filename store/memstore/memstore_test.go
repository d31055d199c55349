package memstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := newStore(Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

func TestInjectedClockDecidesExpiry(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := newStore(Options{Now: c.Now, SweepInterval: -1})
	defer s.Close()
	rec := &store.Record{Key: "k", Issuer: "iss", Subject: "sub", SID: "sid", LastSeen: c.Now(), ExpiresAt: c.Now().Add(10 * time.Minute), Data: []byte("d")}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	c.Advance(10*time.Minute - time.Nanosecond)
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get just before the deadline: %v", err)
	}
	c.Advance(time.Nanosecond)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get at the deadline = %v; want ErrNotFound", err)
	}
	if err := s.Update(ctx, rec); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update at the deadline = %v; want ErrNotFound", err)
	}
	if got, _ := s.List(ctx, store.Filter{Issuer: "iss", Subject: "sub"}); len(got) != 0 {
		t.Fatalf("List returned %d expired records", len(got))
	}
}

func TestInjectedClockDecidesOnce(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := newStore(Options{Now: c.Now, SweepInterval: -1})
	defer s.Close()
	for i, step := range []struct {
		advance time.Duration
		want    bool
	}{
		{0, true},
		{time.Minute - time.Nanosecond, false},
		{time.Nanosecond, true}, // the first entry ended; this call starts a new minute
		{30 * time.Second, false},
	} {
		c.Advance(step.advance)
		got, err := s.Once(ctx, "jti", time.Minute)
		if err != nil || got != step.want {
			t.Fatalf("step %d: Once = %v, %v; want %v", i, got, err, step.want)
		}
	}
	if _, err := s.Once(ctx, "x", 0); err == nil {
		t.Fatal("Once with a zero ttl succeeded; want an error")
	}
}

func TestSweepRemovesExpiredEntries(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := newStore(Options{Now: c.Now, SweepInterval: -1})
	defer s.Close()
	for i := range 4 {
		s.Create(ctx, &store.Record{Key: fmt.Sprint(i), Issuer: "iss", Subject: "sub", SID: "sid", ExpiresAt: c.Now().Add(time.Duration(i+1) * time.Minute)})
	}
	s.Once(ctx, "a", time.Minute)
	s.Once(ctx, "b", time.Hour)
	if n := s.sweep(c.Now().Add(2 * time.Minute)); n != 2 {
		t.Fatalf("sweep = %d; want 2", n)
	}
	if len(s.recs) != 2 || len(s.once) != 1 {
		t.Fatalf("after Sweep: %d records, %d one-time keys; want 2 and 1", len(s.recs), len(s.once))
	}
	if _, ok := s.once["b"]; !ok {
		t.Fatal("Sweep removed a live one-time key")
	}
	if got := len(s.bySub[indexKey{"iss", "sub"}]) + len(s.bySID[indexKey{"iss", "sid"}]); got != 4 {
		t.Fatalf("indexes hold %d entries after Sweep; want 4", got)
	}
}

func TestBackgroundSweeper(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := newStore(Options{Now: c.Now, SweepInterval: time.Millisecond})
	s.Create(ctx, &store.Record{Key: "k", Issuer: "iss", Subject: "sub", ExpiresAt: c.Now().Add(time.Minute)})
	c.Advance(time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.RLock()
		n := len(s.recs) + len(s.bySub)
		s.mu.RUnlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background sweeper did not remove the expired record")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("Close returned before the sweeper stopped")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNoSweeperWhenDisabled(t *testing.T) {
	s := newStore(Options{SweepInterval: -1})
	select {
	case <-s.done:
	default:
		t.Fatal("a sweeper goroutine runs although SweepInterval is negative")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	s := newStore(Options{SweepInterval: -1})
	defer s.Close()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
		s.Create(ctx, &store.Record{Key: keys[i], Issuer: "iss", Subject: fmt.Sprint(i % 64), SID: fmt.Sprint(i), LastSeen: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: make([]byte, 2048)})
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

// TestSweepInBatchesWhileServing: a sweep of many records, which lets go
// of the lock between batches, removes every expired record and none that
// is live while reads run beside it (run with -race).
func TestSweepInBatchesWhileServing(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := newStore(Options{Now: c.Now, SweepInterval: -1})
	defer s.Close()
	const n = 20 * sweepBatch
	for i := range n {
		s.Create(ctx, &store.Record{Key: fmt.Sprint(i), Issuer: "iss", Subject: "sub", ExpiresAt: c.Now().Add(time.Minute)})
	}
	s.Create(ctx, &store.Record{Key: "live", Issuer: "iss", Subject: "sub", ExpiresAt: c.Now().Add(time.Hour)})
	done := make(chan int)
	go func() { done <- s.sweep(c.Now().Add(2 * time.Minute)) }()
	gets := 0
	for swept := false; !swept; {
		select {
		case got := <-done:
			if got != n {
				t.Fatalf("sweep removed %d; want %d", got, n)
			}
			swept = true
		default:
			if _, err := s.Get(ctx, "live"); err != nil {
				t.Fatal(err)
			}
			gets++
		}
	}
	if len(s.recs) != 1 {
		t.Fatalf("%d records left; want the live one", len(s.recs))
	}
	t.Logf("%d reads served during the sweep", gets)
}
