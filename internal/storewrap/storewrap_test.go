package storewrap_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/storewrap"
)

type fakeStore struct{ err error }

func (f *fakeStore) Get(context.Context, string) (*session.Record, error) { return nil, f.err }
func (f *fakeStore) Create(context.Context, *session.Record) error        { return f.err }
func (f *fakeStore) Update(context.Context, *session.Record) error        { return f.err }
func (f *fakeStore) Touch(context.Context, string, time.Time, time.Time) error {
	return f.err
}
func (f *fakeStore) Delete(context.Context, string) error { return f.err }
func (f *fakeStore) DeleteBySID(context.Context, string, string) ([]string, error) {
	return nil, f.err
}
func (f *fakeStore) DeleteBySubject(context.Context, string, string) ([]string, error) {
	return nil, f.err
}
func (f *fakeStore) Close() error { return nil }
func (f *fakeStore) ListBySubject(context.Context, string, string) ([]*session.Record, error) {
	return nil, f.err
}
func (f *fakeStore) Once(context.Context, string, time.Duration) (bool, error) { return false, f.err }
func (f *fakeStore) Ping(context.Context) error                                { return f.err }
func (f *fakeStore) Sweep(context.Context, time.Time) (int, error)             { return 0, f.err }

type caps struct{ lister, once, pinger, sweeper bool }

func capsOf(s session.Store) caps {
	_, l := s.(session.Lister)
	_, o := s.(session.OnceStore)
	_, p := s.(session.Pinger)
	_, w := s.(session.Sweeper)
	return caps{l, o, p, w}
}

// restrict returns a store with the methods of f that c names, and no
// others.
func restrict(f *fakeStore, c caps) session.Store {
	type (
		L = session.Lister
		O = session.OnceStore
		P = session.Pinger
		W = session.Sweeper
		S = session.Store
	)
	switch c {
	case caps{true, true, true, true}:
		return f
	case caps{true, true, true, false}:
		return struct {
			S
			L
			O
			P
		}{f, f, f, f}
	case caps{true, true, false, true}:
		return struct {
			S
			L
			O
			W
		}{f, f, f, f}
	case caps{true, false, true, true}:
		return struct {
			S
			L
			P
			W
		}{f, f, f, f}
	case caps{false, true, true, true}:
		return struct {
			S
			O
			P
			W
		}{f, f, f, f}
	case caps{true, true, false, false}:
		return struct {
			S
			L
			O
		}{f, f, f}
	case caps{true, false, true, false}:
		return struct {
			S
			L
			P
		}{f, f, f}
	case caps{true, false, false, true}:
		return struct {
			S
			L
			W
		}{f, f, f}
	case caps{false, true, true, false}:
		return struct {
			S
			O
			P
		}{f, f, f}
	case caps{false, true, false, true}:
		return struct {
			S
			O
			W
		}{f, f, f}
	case caps{false, false, true, true}:
		return struct {
			S
			P
			W
		}{f, f, f}
	case caps{true, false, false, false}:
		return struct {
			S
			L
		}{f, f}
	case caps{false, true, false, false}:
		return struct {
			S
			O
		}{f, f}
	case caps{false, false, true, false}:
		return struct {
			S
			P
		}{f, f}
	case caps{false, false, false, true}:
		return struct {
			S
			W
		}{f, f}
	}
	return struct{ S }{f}
}

func TestWrapKeepsExactlyTheOptionalInterfaces(t *testing.T) {
	hook := func(ctx context.Context, op string) (context.Context, func(error)) { return ctx, func(error) {} }
	for bits := range 16 {
		want := caps{bits&1 != 0, bits&2 != 0, bits&4 != 0, bits&8 != 0}
		inner := restrict(&fakeStore{}, want)
		if capsOf(inner) != want {
			t.Fatalf("test store %d has %+v", bits, capsOf(inner))
		}
		got := storewrap.Wrap(inner, hook)
		if capsOf(got) != want {
			t.Errorf("wrapping a store with %+v gave one with %+v", want, capsOf(got))
		}
		u, ok := got.(storewrap.Unwrapper)
		if !ok || u.Unwrap() != inner {
			t.Errorf("%+v: Unwrap does not return the inner store", want)
		}
	}
}

type ctxKey struct{}

func TestWrapObservesEveryOperationWithItsContextAndError(t *testing.T) {
	failure := errors.New("backend down")
	var ops []string
	var errs []error
	hook := func(ctx context.Context, op string) (context.Context, func(error)) {
		ops = append(ops, op)
		return context.WithValue(ctx, ctxKey{}, op), func(err error) { errs = append(errs, err) }
	}
	s := storewrap.Wrap(restrict(&fakeStore{err: failure}, caps{true, true, true, true}), hook)
	ctx := context.Background()
	s.Get(ctx, "k")
	s.Create(ctx, &session.Record{})
	s.Update(ctx, &session.Record{})
	s.Touch(ctx, "k", time.Now(), time.Now())
	s.Delete(ctx, "k")
	s.DeleteBySID(ctx, "i", "s")
	s.DeleteBySubject(ctx, "i", "s")
	s.(session.Lister).ListBySubject(ctx, "i", "s")
	s.(session.OnceStore).Once(ctx, "k", time.Second)
	s.(session.Pinger).Ping(ctx)
	s.(session.Sweeper).Sweep(ctx, time.Now())
	s.Close()
	want := []string{"get", "create", "update", "touch", "delete", "delete_by_sid", "delete_by_subject", "list_by_subject", "once", "ping", "sweep"}
	if len(ops) != len(want) {
		t.Fatalf("observed %v, want %v", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Errorf("op %d = %q, want %q", i, ops[i], want[i])
		}
		if !errors.Is(errs[i], failure) {
			t.Errorf("%s: hook saw error %v, want the call's", want[i], errs[i])
		}
	}
}
