package metrics

import (
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
	return storewrap.Observe(s, m.StoreCall)
}
