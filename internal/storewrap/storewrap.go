// Package storewrap wraps a session.Store to observe every call (for
// metrics, tracing) while keeping its exact set of optional interfaces.
//
// A wrapper that always implemented session.Lister, OnceStore, Pinger and
// Sweeper would make type assertions lie; one that implemented none would
// hide them. Wrap returns one of sixteen types, so that an assertion on the
// wrapper succeeds exactly when it would on the wrapped store.
package storewrap

import (
	"context"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/session"
)

// Hook observes one store call. It is called before the call with the
// operation's name ("get", "create", "update", "touch", "delete",
// "delete_by_sid", "delete_by_subject", "list_by_subject", "once", "ping",
// "sweep"), returns the context the call runs with, and a function that is
// called with the call's error when it returns. Close is not observed.
type Hook func(ctx context.Context, op string) (context.Context, func(error))

// Unwrapper is implemented by every store Wrap returns.
type Unwrapper interface {
	Unwrap() session.Store
}

// Wrap returns s with every call observed by hook.
func Wrap(s session.Store, hook Hook) session.Store {
	b := &store{hook: hook, s: s}
	l, isL := s.(session.Lister)
	o, isO := s.(session.OnceStore)
	p, isP := s.(session.Pinger)
	sw, isS := s.(session.Sweeper)
	var (
		li = lister{b, l}
		oi = onceStore{b, o}
		pi = pinger{b, p}
		si = sweeper{b, sw}
	)
	// One type per combination, so that a type assertion succeeds exactly
	// when it would on s.
	switch {
	case isL && isO && isP && isS:
		return struct {
			*store
			lister
			onceStore
			pinger
			sweeper
		}{b, li, oi, pi, si}
	case isL && isO && isP:
		return struct {
			*store
			lister
			onceStore
			pinger
		}{b, li, oi, pi}
	case isL && isO && isS:
		return struct {
			*store
			lister
			onceStore
			sweeper
		}{b, li, oi, si}
	case isL && isP && isS:
		return struct {
			*store
			lister
			pinger
			sweeper
		}{b, li, pi, si}
	case isO && isP && isS:
		return struct {
			*store
			onceStore
			pinger
			sweeper
		}{b, oi, pi, si}
	case isL && isO:
		return struct {
			*store
			lister
			onceStore
		}{b, li, oi}
	case isL && isP:
		return struct {
			*store
			lister
			pinger
		}{b, li, pi}
	case isL && isS:
		return struct {
			*store
			lister
			sweeper
		}{b, li, si}
	case isO && isP:
		return struct {
			*store
			onceStore
			pinger
		}{b, oi, pi}
	case isO && isS:
		return struct {
			*store
			onceStore
			sweeper
		}{b, oi, si}
	case isP && isS:
		return struct {
			*store
			pinger
			sweeper
		}{b, pi, si}
	case isL:
		return struct {
			*store
			lister
		}{b, li}
	case isO:
		return struct {
			*store
			onceStore
		}{b, oi}
	case isP:
		return struct {
			*store
			pinger
		}{b, pi}
	case isS:
		return struct {
			*store
			sweeper
		}{b, si}
	}
	return b
}

// store observes the methods of session.Store.
type store struct {
	hook Hook
	s    session.Store
}

var _ session.Store = (*store)(nil)

// Unwrap returns the wrapped store.
func (b *store) Unwrap() session.Store { return b.s }

func (b *store) Get(ctx context.Context, key string) (rec *session.Record, err error) {
	ctx, done := b.hook(ctx, "get")
	defer func() { done(err) }()
	return b.s.Get(ctx, key)
}

func (b *store) Create(ctx context.Context, rec *session.Record) (err error) {
	ctx, done := b.hook(ctx, "create")
	defer func() { done(err) }()
	return b.s.Create(ctx, rec)
}

func (b *store) Update(ctx context.Context, rec *session.Record) (err error) {
	ctx, done := b.hook(ctx, "update")
	defer func() { done(err) }()
	return b.s.Update(ctx, rec)
}

func (b *store) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) (err error) {
	ctx, done := b.hook(ctx, "touch")
	defer func() { done(err) }()
	return b.s.Touch(ctx, key, lastSeen, expiresAt)
}

func (b *store) Delete(ctx context.Context, key string) (err error) {
	ctx, done := b.hook(ctx, "delete")
	defer func() { done(err) }()
	return b.s.Delete(ctx, key)
}

func (b *store) DeleteBySID(ctx context.Context, issuer, sid string) (keys []string, err error) {
	ctx, done := b.hook(ctx, "delete_by_sid")
	defer func() { done(err) }()
	return b.s.DeleteBySID(ctx, issuer, sid)
}

func (b *store) DeleteBySubject(ctx context.Context, issuer, subject string) (keys []string, err error) {
	ctx, done := b.hook(ctx, "delete_by_subject")
	defer func() { done(err) }()
	return b.s.DeleteBySubject(ctx, issuer, subject)
}

func (b *store) Close() error { return b.s.Close() }

type lister struct {
	b *store
	l session.Lister
}

func (w lister) ListBySubject(ctx context.Context, issuer, subject string) (recs []*session.Record, err error) {
	ctx, done := w.b.hook(ctx, "list_by_subject")
	defer func() { done(err) }()
	return w.l.ListBySubject(ctx, issuer, subject)
}

type onceStore struct {
	b *store
	o session.OnceStore
}

func (w onceStore) Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	ctx, done := w.b.hook(ctx, "once")
	defer func() { done(err) }()
	return w.o.Once(ctx, key, ttl)
}

type pinger struct {
	b *store
	p session.Pinger
}

func (w pinger) Ping(ctx context.Context) (err error) {
	ctx, done := w.b.hook(ctx, "ping")
	defer func() { done(err) }()
	return w.p.Ping(ctx)
}

type sweeper struct {
	b *store
	s session.Sweeper
}

func (w sweeper) Sweep(ctx context.Context, now time.Time) (n int, err error) {
	ctx, done := w.b.hook(ctx, "sweep")
	defer func() { done(err) }()
	return w.s.Sweep(ctx, now)
}
