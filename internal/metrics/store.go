package metrics

import (
	"context"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/storewrap"
	"github.com/gatehouse-bff/gatehouse/store"
)

// InstrumentStore returns a store.Store that records every call to s with
// m.StoreCall, under the operation names of storewrap.Hook (Close is not
// recorded). A nil m returns s unchanged.
func InstrumentStore(m *Metrics, s store.Store) store.Store {
	if m == nil {
		return s
	}
	return storewrap.Wrap(s, func(ctx context.Context, op string) (context.Context, func(error)) {
		start := time.Now()
		return ctx, func(err error) { m.StoreCall(op, time.Since(start), err) }
	})
}
