package apiauth

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestReplayCacheBoundedAndExpiring(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	c := newReplayCache(func() time.Time { return now }, 3)
	ctx := context.Background()
	once := func(key string) (bool, error) { return c.Once(ctx, key, time.Minute) }

	for i := range 3 {
		if ok, err := once(fmt.Sprint(i)); !ok || err != nil {
			t.Fatalf("first use of %d: %v %v", i, ok, err)
		}
	}
	if ok, err := once("1"); ok || err != nil {
		t.Fatalf("replay of 1: %v %v, want false", ok, err)
	}
	// Full: a new id is refused with an error, not let through, and no
	// remembered id is forgotten to make room.
	if ok, err := once("new"); ok || !errors.Is(err, errReplayCacheFull) {
		t.Fatalf("full cache: %v %v, want errReplayCacheFull", ok, err)
	}
	if ok, _ := once("0"); ok {
		t.Fatal("an id was forgotten while the cache was full")
	}
	now = now.Add(time.Minute)
	if ok, err := once("0"); !ok || err != nil {
		t.Fatalf("0 after its ttl: %v %v, want a first use again", ok, err)
	}
	if ok, err := once("new"); !ok || err != nil {
		t.Fatalf("after expiry made room: %v %v", ok, err)
	}
	if len(c.seen) != 2 || len(c.queue)-c.head != 2 {
		t.Errorf("%d ids and %d queued, want 2 and 2", len(c.seen), len(c.queue)-c.head)
	}
}
