package tracing

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-bff/gatehouse/internal/storewrap"
	"github.com/gatehouse-bff/gatehouse/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Store returns a store.Store that runs every call to s in a span named
// "session.store <op>", with op one of storewrap.Hook's operation names
// (Close is not traced). Spans carry no keys, issuers, subjects, sids or
// record data; a failed call marks its span as an error with the error's
// type only, and store.ErrNotFound is not a failure. A nil or disabled t
// returns s unchanged.
func (t *Tracing) Store(s store.Store) store.Store {
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
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		span.SetAttributes(attribute.String("error.type", fmt.Sprintf("%T", err)))
		span.SetStatus(codes.Error, "session store call failed")
	}
	span.End()
}
