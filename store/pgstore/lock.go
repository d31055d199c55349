package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Lock blocks until it holds the lock named key, or ctx ends, and returns
// the function that releases it. It serialises the refresh of one session
// across Gatehouse replicas (RFC 9700 §4.14.2: two replicas spending the
// same rotating refresh token would revoke the whole family).
//
// The lock is pg_advisory_xact_lock in a transaction on a connection of
// its own. It frees itself ttl after it was taken if unlock is never
// called: the store rolls the transaction back, and the server ends the
// session by itself (idle_in_transaction_session_timeout) should the
// holder hang or lose the database. A wait is bounded by ctx and by ttl
// plus the store's timeout (lock_timeout), since a holder frees the lock
// within ttl.
func (s *pgStore) Lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	if ttl <= 0 {
		return nil, errors.New("pgstore: lock ttl must be positive")
	}
	select {
	case s.locks <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("pgstore: lock: %w", ctx.Err())
	}
	ok := false
	defer func() {
		if !ok {
			<-s.locks
		}
	}()
	wait := ttl + s.timeout
	ctx, cancel := context.WithTimeout(ctx, wait+s.timeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgstore: lock: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("pgstore: lock: %w", err)
	}
	fail := func(err error) (func(), error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		tx.Rollback(rctx)
		conn.Release()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
			return nil, fmt.Errorf("pgstore: lock: not free after %v", wait)
		}
		return nil, fmt.Errorf("pgstore: lock: %w", err)
	}
	if _, err := tx.Exec(ctx,
		"SELECT set_config('lock_timeout', $1, true), set_config('idle_in_transaction_session_timeout', $2, true)",
		millis(wait), millis(ttl)); err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockID("lock", s.ns, key)); err != nil {
		return fail(err)
	}
	ok = true

	var once sync.Once
	release := func() {
		once.Do(func() {
			// A failed rollback (the server ended the session at ttl)
			// leaves the connection broken, and Release discards it.
			rctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			defer cancel()
			tx.Rollback(rctx)
			conn.Release()
			<-s.locks
		})
	}
	if s.serverExpiryOnly {
		return release, nil
	}
	timer := time.AfterFunc(ttl, release)
	return func() {
		timer.Stop()
		release()
	}, nil
}

// millis renders d as a PostgreSQL duration setting, at least 1ms (0 would
// mean no limit).
func millis(d time.Duration) string {
	return strconv.FormatInt(max(1, d.Milliseconds()), 10)
}
