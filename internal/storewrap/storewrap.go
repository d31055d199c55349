// Package storewrap wraps a store.Store to observe every call, for metrics
// and tracing.
package storewrap

import (
	"context"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
)

// Hook observes one store call. It is called before the call with the
// operation's name ("get", "create", "update", "delete", "delete_matching",
// "list", "once", "ping"), returns the context the call runs with, and a
// function that is called with the call's error when it returns. Close is
// not observed.
type Hook func(ctx context.Context, op string) (context.Context, func(error))

// Wrap returns s with every call observed by hook.
func Wrap(s store.Store, hook Hook) store.Store {
	return &wrapped{s: s, hook: hook}
}

type wrapped struct {
	s    store.Store
	hook Hook
}

func (w *wrapped) Get(ctx context.Context, key string) (*store.Record, error) {
	ctx, done := w.hook(ctx, "get")
	rec, err := w.s.Get(ctx, key)
	done(err)
	return rec, err
}

func (w *wrapped) Create(ctx context.Context, rec *store.Record) error {
	ctx, done := w.hook(ctx, "create")
	err := w.s.Create(ctx, rec)
	done(err)
	return err
}

func (w *wrapped) Update(ctx context.Context, rec *store.Record) error {
	ctx, done := w.hook(ctx, "update")
	err := w.s.Update(ctx, rec)
	done(err)
	return err
}

func (w *wrapped) Delete(ctx context.Context, key string) error {
	ctx, done := w.hook(ctx, "delete")
	err := w.s.Delete(ctx, key)
	done(err)
	return err
}

func (w *wrapped) DeleteMatching(ctx context.Context, f store.Filter) ([]string, error) {
	ctx, done := w.hook(ctx, "delete_matching")
	keys, err := w.s.DeleteMatching(ctx, f)
	done(err)
	return keys, err
}

func (w *wrapped) List(ctx context.Context, f store.Filter) ([]*store.Record, error) {
	ctx, done := w.hook(ctx, "list")
	recs, err := w.s.List(ctx, f)
	done(err)
	return recs, err
}

func (w *wrapped) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ctx, done := w.hook(ctx, "once")
	ok, err := w.s.Once(ctx, key, ttl)
	done(err)
	return ok, err
}

func (w *wrapped) Ping(ctx context.Context) error {
	ctx, done := w.hook(ctx, "ping")
	err := w.s.Ping(ctx)
	done(err)
	return err
}

func (w *wrapped) Close() error { return w.s.Close() }
