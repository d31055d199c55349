package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
	"github.com/redis/go-redis/v9"
)

func TestLockerExcludesAcrossLockers(t *testing.T) {
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	// Two lockers stand for two processes.
	a, b := locker(c, prefix), locker(c, prefix)
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			unlock, err := l.Lock(context.Background(), "session-1", 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Errorf("%d holders at once, want 1", maxInside.Load())
	}
}

func TestLockerWaitEndsWithContext(t *testing.T) {
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	l := locker(c, prefix)
	unlock, err := l.Lock(context.Background(), "k", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Lock(ctx, "k", 5*time.Second); err == nil {
		t.Error("a held lock was taken twice")
	}
	// Another key is independent.
	u2, err := l.Lock(context.Background(), "other", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

func TestLockerUnlockKeepsAnotherOwnersLock(t *testing.T) {
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	l := locker(c, prefix)
	unlock, err := l.Lock(context.Background(), "k", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// The first owner's lease runs out; a second owner takes the lock.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlock2, err := l.Lock(ctx, "k", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock2()
	unlock() // late release by the first owner must not free the second's lock
	short, cancel2 := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel2()
	if _, err := l.Lock(short, "k", time.Second); err == nil {
		t.Error("the first owner's late unlock released the second owner's lock")
	}
}

// locker is the lock of a store on c with prefix.
func locker(c redis.UniversalClient, prefix string) store.Locker {
	return redisstore.New(c, redisstore.Options{Prefix: prefix}).(store.Locker)
}
