package metrics

import (
	"context"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/storewrap"
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
	return storewrap.Wrap(s, func(ctx context.Context, op string) (context.Context, func(error)) {
		start := time.Now()
		return ctx, func(err error) { m.StoreCall(op, time.Since(start), err) }
	})
}
