package pgstore_test

import (
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/pgtest"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/pgstore"
	"github.com/gatehouse-bff/gatehouse/store/storetest"
)

// TestConformance runs the store contract's suite on one schema of its
// own; every subtest works on keys and issuers of its own.
func TestConformance(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	s := open(t, dsn, pgstore.Options{})
	storetest.Run(t, func(t *testing.T) store.Store { return s })
}

// TestConformanceFreshStores runs it again with a store opened per subtest
// on the same tables, as replicas and restarts see them.
func TestConformanceFreshStores(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, dsn, pgstore.Options{}) })
}
