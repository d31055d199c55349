package tracing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-bff/gatehouse/session"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Store returns a session.Store that runs every call to s in a span named
// "session.store <op>", with op one of "get", "create", "update", "touch",
// "delete", "delete_by_sid", "delete_by_subject", "list_by_subject",
// "once", "ping" and "sweep" (Close is not traced). Spans carry no keys,
// issuers, subjects, sids or record data; a failed call marks its span as
// an error with the error's type only, and session.ErrNotFound is not a
// failure.
//
// The returned store implements exactly the optional interfaces s
// implements (session.Lister, session.OnceStore, session.Pinger,
// session.Sweeper), so type assertions on it answer as they would on s.
// It also has a method Unwrap() session.Store returning s. A nil or
// disabled t returns s unchanged.
func (t *Tracing) Store(s session.Store) session.Store {
	if !t.Enabled() {
		return s
	}
	b := &store{tracer: t.tracer, s: s}
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

// store traces the methods of session.Store.
type store struct {
	tracer trace.Tracer
	s      session.Store
}

var _ session.Store = (*store)(nil)

// Unwrap returns the traced store.
func (b *store) Unwrap() session.Store { return b.s }

// start starts the span of one store call.
func (b *store) start(ctx context.Context, op string) (context.Context, trace.Span) {
	return b.tracer.Start(ctx, "session.store "+op,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("db.operation.name", op)))
}

// end ends span, recording a failure by type only: store errors may quote
// keys or backend addresses.
func end(span trace.Span, err error) {
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		span.SetAttributes(attribute.String("error.type", fmt.Sprintf("%T", err)))
		span.SetStatus(codes.Error, "session store call failed")
	}
	span.End()
}

func (b *store) Get(ctx context.Context, key string) (rec *session.Record, err error) {
	ctx, span := b.start(ctx, "get")
	defer func() { end(span, err) }()
	return b.s.Get(ctx, key)
}

func (b *store) Create(ctx context.Context, rec *session.Record) (err error) {
	ctx, span := b.start(ctx, "create")
	defer func() { end(span, err) }()
	return b.s.Create(ctx, rec)
}

func (b *store) Update(ctx context.Context, rec *session.Record) (err error) {
	ctx, span := b.start(ctx, "update")
	defer func() { end(span, err) }()
	return b.s.Update(ctx, rec)
}

func (b *store) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) (err error) {
	ctx, span := b.start(ctx, "touch")
	defer func() { end(span, err) }()
	return b.s.Touch(ctx, key, lastSeen, expiresAt)
}

func (b *store) Delete(ctx context.Context, key string) (err error) {
	ctx, span := b.start(ctx, "delete")
	defer func() { end(span, err) }()
	return b.s.Delete(ctx, key)
}

func (b *store) DeleteBySID(ctx context.Context, issuer, sid string) (keys []string, err error) {
	ctx, span := b.start(ctx, "delete_by_sid")
	defer func() { end(span, err) }()
	return b.s.DeleteBySID(ctx, issuer, sid)
}

func (b *store) DeleteBySubject(ctx context.Context, issuer, subject string) (keys []string, err error) {
	ctx, span := b.start(ctx, "delete_by_subject")
	defer func() { end(span, err) }()
	return b.s.DeleteBySubject(ctx, issuer, subject)
}

func (b *store) Close() error { return b.s.Close() }

type lister struct {
	b *store
	l session.Lister
}

func (w lister) ListBySubject(ctx context.Context, issuer, subject string) (recs []*session.Record, err error) {
	ctx, span := w.b.start(ctx, "list_by_subject")
	defer func() { end(span, err) }()
	return w.l.ListBySubject(ctx, issuer, subject)
}

type onceStore struct {
	b *store
	o session.OnceStore
}

func (w onceStore) Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	ctx, span := w.b.start(ctx, "once")
	defer func() { end(span, err) }()
	return w.o.Once(ctx, key, ttl)
}

type pinger struct {
	b *store
	p session.Pinger
}

func (w pinger) Ping(ctx context.Context) (err error) {
	ctx, span := w.b.start(ctx, "ping")
	defer func() { end(span, err) }()
	return w.p.Ping(ctx)
}

type sweeper struct {
	b *store
	s session.Sweeper
}

func (w sweeper) Sweep(ctx context.Context, now time.Time) (n int, err error) {
	ctx, span := w.b.start(ctx, "sweep")
	defer func() { end(span, err) }()
	return w.s.Sweep(ctx, now)
}
