package streams

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresNotifier is a Notifier on PostgreSQL LISTEN/NOTIFY, on the
// channel "gatehouse_streams_ended" of the session store's database.
// Channels are per database, not per schema: deployments sharing a
// database hear each other's ends, which is harmless (a key names one
// session, and only streams of keys held here are closed).
type PostgresNotifier struct {
	pool    *pgxpool.Pool
	channel string
}

var _ Notifier = (*PostgresNotifier)(nil)

// PostgresChannel is the notification channel.
const PostgresChannel = "gatehouse_streams_ended"

// NewPostgresNotifier returns a notifier on the database dsn names. It
// connects lazily; Close releases its connections.
func NewPostgresNotifier(dsn string) (*PostgresNotifier, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors can quote the DSN: never pass them on.
		return nil, fmt.Errorf("streams: the postgres DSN cannot be parsed")
	}
	// One connection listens, one or two publish.
	cfg.MaxConns = 3
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("streams: postgres pool: %w", err)
	}
	return &PostgresNotifier{pool: pool, channel: PostgresChannel}, nil
}

// postgresBatch keeps one notification under PostgreSQL's payload limit
// (8000 bytes): 100 keys of 43 characters and their quoting.
const postgresBatch = 100

// Publish notifies every listening replica.
func (n *PostgresNotifier) Publish(ctx context.Context, keys []string, reason string) error {
	for len(keys) > 0 {
		batch := keys[:min(postgresBatch, len(keys))]
		keys = keys[len(batch):]
		b, err := json.Marshal(message{Reason: reason, Keys: batch})
		if err != nil {
			return fmt.Errorf("streams: encode: %w", err)
		}
		if _, err := n.pool.Exec(ctx, "SELECT pg_notify($1, $2)", n.channel, string(b)); err != nil {
			return fmt.Errorf("streams: notify: %w", err)
		}
	}
	return nil
}

// Listen follows the channel on a connection of its own until ctx ends or
// the connection fails.
func (n *PostgresNotifier) Listen(ctx context.Context, ended func(keys []string, reason string)) error {
	c, err := n.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("streams: listen: %w", err)
	}
	// The connection leaves the pool: a LISTEN must not be handed to a
	// publisher, and it is closed when listening stops.
	conn := c.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{n.channel}.Sanitize()); err != nil {
		return fmt.Errorf("streams: listen: %w", err)
	}
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("streams: wait for notification: %w", err)
		}
		var batch message
		if json.Unmarshal([]byte(note.Payload), &batch) != nil {
			continue
		}
		ended(batch.Keys, label(batch.Reason))
	}
}

// Close releases the notifier's connections.
func (n *PostgresNotifier) Close() { n.pool.Close() }
