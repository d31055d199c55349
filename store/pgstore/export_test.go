package pgstore

import (
	"context"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
)

// Sweep runs one sweep as of now and returns the sessions it removed and
// the DELETE statements it took for them.
func Sweep(s store.Store, ctx context.Context, now time.Time) (removed, batches int, err error) {
	return s.(*pgStore).sweep(ctx, now)
}

// SetSweepBatch sets how many rows one sweep statement deletes.
func SetSweepBatch(s store.Store, n int) { s.(*pgStore).batch = n }

// ServerExpiryOnly leaves a lock's release at its ttl to the server alone.
func ServerExpiryOnly(s store.Store) { s.(*pgStore).serverExpiryOnly = true }
