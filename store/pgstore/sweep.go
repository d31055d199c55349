package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/sweep"
)

func (s *pgStore) sweepLoop(interval time.Duration) {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	sweep.Every(interval, s.stop, func() {
		start := time.Now()
		n, _, err := s.sweep(ctx, s.now())
		if err != nil && ctx.Err() == nil {
			s.log.Warn("pgstore: sweep failed", "err", err)
		}
		if n > 0 {
			s.log.Debug(sweep.Done, "count", n, "took", time.Since(start))
		}
	})
}

// sweep deletes the sessions and one-time keys that expired at or before
// now and returns how many sessions it removed and in how many statements.
// Each statement deletes at most s.batch rows, skipping rows another
// transaction holds, so it never waits on nor blocks a request for long;
// after each full one the sweep rests as long as the statement took, so
// that the database (often on the gateway's own machine) spends at most
// half its time on the sweep while requests wait for it.
func (s *pgStore) sweep(ctx context.Context, now time.Time) (removed, batches int, err error) {
	for _, table := range []string{s.sessions, s.once} {
		for {
			start := time.Now()
			n, err := s.sweepBatch(ctx, table, now)
			if table == s.sessions {
				removed += n
				batches++
			}
			if err != nil {
				return removed, batches, err
			}
			if n < s.batch {
				break
			}
			select {
			case <-time.After(time.Since(start)):
			case <-ctx.Done():
				return removed, batches, context.Cause(ctx)
			}
		}
	}
	return removed, batches, nil
}

func (s *pgStore) sweepBatch(ctx context.Context, table string, now time.Time) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// = ANY(ARRAY(...)) and ORDER BY keep both the custom and the generic
	// plan of this prepared statement on the indexes (expires_at, then the
	// primary key): "key IN (subquery)" may join against a full scan, and a
	// generic plan without the order may scan the table for the few rows
	// that expired.
	tag, err := s.pool.Exec(ctx, "DELETE FROM "+table+" WHERE key = ANY(ARRAY(SELECT key FROM "+table+
		" WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))", now, s.batch)
	if err != nil {
		return 0, fmt.Errorf("pgstore: sweep: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
