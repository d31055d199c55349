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

// Observer is told of each store call when it returns: the operation's
// name (as for Hook), how long the call took and its error. Close is not
// observed.
type Observer func(op string, d time.Duration, err error)

// Observe returns s with every call reported to observe. Unlike a Hook,
// which returns a function per call, it costs no allocation per call.
func Observe(s store.Store, observe Observer) store.Store {
	return &wrapped{s: s, observe: observe}
}

type wrapped struct {
	s       store.Store
	hook    Hook     // nil with observe
	observe Observer // nil with hook
}

// call is one observed call in progress.
type call struct {
	w     *wrapped
	op    string
	start time.Time
	done  func(error) // the hook's
}

func (w *wrapped) begin(ctx context.Context, op string) (context.Context, call) {
	if w.hook != nil {
		ctx, done := w.hook(ctx, op)
		return ctx, call{done: done}
	}
	return ctx, call{w: w, op: op, start: time.Now()}
}

func (c call) end(err error) {
	if c.done != nil {
		c.done(err)
		return
	}
	c.w.observe(c.op, time.Since(c.start), err)
}

func (w *wrapped) Get(ctx context.Context, key string) (*store.Record, error) {
	ctx, c := w.begin(ctx, "get")
	rec, err := w.s.Get(ctx, key)
	c.end(err)
	return rec, err
}

func (w *wrapped) Create(ctx context.Context, rec *store.Record) error {
	ctx, c := w.begin(ctx, "create")
	err := w.s.Create(ctx, rec)
	c.end(err)
	return err
}

func (w *wrapped) Update(ctx context.Context, rec *store.Record) error {
	ctx, c := w.begin(ctx, "update")
	err := w.s.Update(ctx, rec)
	c.end(err)
	return err
}

func (w *wrapped) Delete(ctx context.Context, key string) error {
	ctx, c := w.begin(ctx, "delete")
	err := w.s.Delete(ctx, key)
	c.end(err)
	return err
}

func (w *wrapped) DeleteMatching(ctx context.Context, f store.Filter) ([]string, error) {
	ctx, c := w.begin(ctx, "delete_matching")
	keys, err := w.s.DeleteMatching(ctx, f)
	c.end(err)
	return keys, err
}

func (w *wrapped) List(ctx context.Context, f store.Filter) ([]*store.Record, error) {
	ctx, c := w.begin(ctx, "list")
	recs, err := w.s.List(ctx, f)
	c.end(err)
	return recs, err
}

func (w *wrapped) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ctx, c := w.begin(ctx, "once")
	ok, err := w.s.Once(ctx, key, ttl)
	c.end(err)
	return ok, err
}

func (w *wrapped) Ping(ctx context.Context) error {
	ctx, c := w.begin(ctx, "ping")
	err := w.s.Ping(ctx)
	c.end(err)
	return err
}

func (w *wrapped) Close() error { return w.s.Close() }
