package pgstore

import (
	"context"
	"time"
)

// Sweep runs one sweep as of now and returns the sessions it removed and
// the DELETE statements it took for them.
func (s *Store) Sweep(ctx context.Context, now time.Time) (removed, batches int, err error) {
	return s.sweep(ctx, now)
}

// SetSweepBatch sets how many rows one sweep statement deletes.
func (s *Store) SetSweepBatch(n int) { s.batch = n }

// ServerExpiryOnly leaves a lock's release at its ttl to the server alone.
func (s *Store) ServerExpiryOnly() { s.serverExpiryOnly = true }
