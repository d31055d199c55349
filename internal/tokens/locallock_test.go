package tokens

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLocalLockerExcludes(t *testing.T) {
	l := NewLocalLocker()
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			unlock, err := l.Lock(context.Background(), "k", time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			if n := inside.Add(1); n > most.Load() {
				most.Store(n)
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			unlock()
			unlock() // a second unlock is harmless
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once; want 1", most.Load())
	}
	unlock, _ := l.Lock(context.Background(), "k", time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "k", time.Second); err == nil {
		t.Fatal("a held lock was taken again")
	}
	if u2, err := l.Lock(context.Background(), "other", time.Second); err != nil {
		t.Fatal(err)
	} else {
		u2()
	}
	unlock()
}
