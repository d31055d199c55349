package metrics

import (
	"context"
	"time"

	"github.com/gatehouse-bff/gatehouse/session"
)

// InstrumentStore returns a session.Store that records every call to s
// with m.StoreCall, under the operation names "get", "create", "update",
// "touch", "delete", "delete_by_sid", "delete_by_subject",
// "list_by_subject", "once", "ping" and "sweep" (Close is not recorded).
//
// The returned store implements exactly the optional interfaces s
// implements (session.Lister, session.OnceStore, session.Pinger,
// session.Sweeper), so type assertions on it answer as they would on s.
// It also has a method Unwrap() session.Store returning s. A nil m returns
// s unchanged.
func InstrumentStore(m *Metrics, s session.Store) session.Store {
	if m == nil {
		return s
	}
	b := &store{m: m, s: s}
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

// store instruments the methods of session.Store.
type store struct {
	m *Metrics
	s session.Store
}

var _ session.Store = (*store)(nil)

// Unwrap returns the instrumented store.
func (b *store) Unwrap() session.Store { return b.s }

func (b *store) record(op string, start time.Time, err error) {
	b.m.StoreCall(op, time.Since(start), err)
}

func (b *store) Get(ctx context.Context, key string) (rec *session.Record, err error) {
	defer func(start time.Time) { b.record("get", start, err) }(time.Now())
	return b.s.Get(ctx, key)
}

func (b *store) Create(ctx context.Context, rec *session.Record) (err error) {
	defer func(start time.Time) { b.record("create", start, err) }(time.Now())
	return b.s.Create(ctx, rec)
}

func (b *store) Update(ctx context.Context, rec *session.Record) (err error) {
	defer func(start time.Time) { b.record("update", start, err) }(time.Now())
	return b.s.Update(ctx, rec)
}

func (b *store) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) (err error) {
	defer func(start time.Time) { b.record("touch", start, err) }(time.Now())
	return b.s.Touch(ctx, key, lastSeen, expiresAt)
}

func (b *store) Delete(ctx context.Context, key string) (err error) {
	defer func(start time.Time) { b.record("delete", start, err) }(time.Now())
	return b.s.Delete(ctx, key)
}

func (b *store) DeleteBySID(ctx context.Context, issuer, sid string) (keys []string, err error) {
	defer func(start time.Time) { b.record("delete_by_sid", start, err) }(time.Now())
	return b.s.DeleteBySID(ctx, issuer, sid)
}

func (b *store) DeleteBySubject(ctx context.Context, issuer, subject string) (keys []string, err error) {
	defer func(start time.Time) { b.record("delete_by_subject", start, err) }(time.Now())
	return b.s.DeleteBySubject(ctx, issuer, subject)
}

func (b *store) Close() error { return b.s.Close() }

type lister struct {
	b *store
	l session.Lister
}

func (w lister) ListBySubject(ctx context.Context, issuer, subject string) (recs []*session.Record, err error) {
	defer func(start time.Time) { w.b.record("list_by_subject", start, err) }(time.Now())
	return w.l.ListBySubject(ctx, issuer, subject)
}

type onceStore struct {
	b *store
	o session.OnceStore
}

func (w onceStore) Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	defer func(start time.Time) { w.b.record("once", start, err) }(time.Now())
	return w.o.Once(ctx, key, ttl)
}

type pinger struct {
	b *store
	p session.Pinger
}

func (w pinger) Ping(ctx context.Context) (err error) {
	defer func(start time.Time) { w.b.record("ping", start, err) }(time.Now())
	return w.p.Ping(ctx)
}

type sweeper struct {
	b *store
	s session.Sweeper
}

func (w sweeper) Sweep(ctx context.Context, now time.Time) (n int, err error) {
	defer func(start time.Time) { w.b.record("sweep", start, err) }(time.Now())
	return w.s.Sweep(ctx, now)
}
