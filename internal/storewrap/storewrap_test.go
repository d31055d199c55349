package storewrap_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/storewrap"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

// TestEveryCallIsObserved: each method reports its operation to the hook,
// runs with the context the hook returns, and hands the hook the error it
// returns.
func TestEveryCallIsObserved(t *testing.T) {
	mem := memstore.New(memstore.Options{SweepInterval: -1})
	defer mem.Close()
	type ctxKey struct{}
	var ops []string
	var errs []error
	s := storewrap.Wrap(mem, func(ctx context.Context, op string) (context.Context, func(error)) {
		ops = append(ops, op)
		return context.WithValue(ctx, ctxKey{}, op), func(err error) { errs = append(errs, err) }
	})
	callEvery(t, s)
	if !slices.Equal(ops, everyOp) {
		t.Fatalf("observed %q; want %q", ops, everyOp)
	}
	if !errors.Is(errs[len(errs)-1], store.ErrNotFound) || slices.ContainsFunc(errs[:len(errs)-1], func(e error) bool { return e != nil }) {
		t.Fatalf("errors seen by the hook = %v", errs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestObserveReportsEveryCall: each method reports its operation, a
// duration and the error it returns, with no allocation of its own.
func TestObserveReportsEveryCall(t *testing.T) {
	mem := memstore.New(memstore.Options{SweepInterval: -1})
	defer mem.Close()
	var ops []string
	var errs []error
	s := storewrap.Observe(mem, func(op string, d time.Duration, err error) {
		if d < 0 {
			t.Errorf("%s: negative duration %v", op, d)
		}
		ops = append(ops, op)
		errs = append(errs, err)
	})
	callEvery(t, s)
	if !slices.Equal(ops, everyOp) {
		t.Fatalf("observed %q; want %q", ops, everyOp)
	}
	if !errors.Is(errs[len(errs)-1], store.ErrNotFound) || slices.ContainsFunc(errs[:len(errs)-1], func(e error) bool { return e != nil }) {
		t.Fatalf("errors seen by the observer = %v", errs)
	}
	quiet := storewrap.Observe(mem, func(string, time.Duration, error) {})
	ctx := t.Context()
	if n := testing.AllocsPerRun(100, func() { quiet.Ping(ctx) }); n != 0 {
		t.Errorf("an observed Ping allocates %v times, want 0", n)
	}
}

// everyOp names the calls callEvery makes, in order.
var everyOp = []string{"create", "get", "update", "list", "once", "ping", "delete_matching", "delete", "get"}

// callEvery calls each method of s once, then Get again after the Delete,
// which must pass store.ErrNotFound through.
func callEvery(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	rec := &store.Record{Key: "k", Issuer: "iss", Subject: "sub", ExpiresAt: time.Now().Add(time.Hour)}
	f := store.Filter{Issuer: "iss", Subject: "sub"}
	s.Create(ctx, rec)
	s.Get(ctx, "k")
	s.Update(ctx, rec)
	s.List(ctx, f)
	s.Once(ctx, "o", time.Minute)
	s.Ping(ctx)
	s.DeleteMatching(ctx, f)
	s.Delete(ctx, "k")
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete = %v; want store.ErrNotFound passed through", err)
	}
}
