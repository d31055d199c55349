package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

// heldStore holds every Update until release is closed.
type heldStore struct {
	store.Store
	release chan struct{}
}

func (h heldStore) Update(ctx context.Context, rec *store.Record) error {
	<-h.release
	return h.Store.Update(ctx, rec)
}

// TestSettledWaitsForThatKeyOnly: a load waits while its own session's
// slide is being written, and not for another session's.
func TestSettledWaitsForThatKeyOnly(t *testing.T) {
	mem := memstore.New(memstore.Options{SweepInterval: -1})
	t.Cleanup(func() { mem.Close() })
	st := heldStore{Store: mem, release: make(chan struct{})}
	tch := NewToucher(nil)
	ctx := context.Background()
	rec := &store.Record{Key: "a", ExpiresAt: time.Now().Add(time.Hour)}
	done := tch.start(ctx, st, rec)
	if done == nil {
		t.Fatal("start refused the first slide")
	}
	if again := tch.start(ctx, st, rec); again != done {
		t.Error("a second slide of the same session started a second write")
	}

	cancelled, cancel := context.WithCancelCause(ctx)
	cause := errors.New("request over")
	cancel(cause)
	if err := tch.settled(cancelled, "a"); !errors.Is(err, cause) {
		t.Errorf("settled on the session being written = %v; want to wait until the request ended", err)
	}
	if err := tch.settled(cancelled, "b"); err != nil {
		t.Errorf("settled on another session = %v; want no wait", err)
	}

	close(st.release)
	<-done
	if err := tch.settled(cancelled, "a"); err != nil {
		t.Errorf("settled after the write = %v; want no wait", err)
	}
	tch.Wait()
}
