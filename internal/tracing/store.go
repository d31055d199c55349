package tracing

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/storewrap"
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
	return storewrap.Wrap(s, func(ctx context.Context, op string) (context.Context, func(error)) {
		ctx, span := t.tracer.Start(ctx, "session.store "+op,
			trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(attribute.String("db.operation.name", op)))
		return ctx, func(err error) { end(span, err) }
	})
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
