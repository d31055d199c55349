package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisNotifier is a Notifier on Redis pub/sub, on the channel
// "<prefix>streams:ended" beside the session store's keys.
type RedisNotifier struct {
	c       redis.UniversalClient
	channel string
}

var _ Notifier = (*RedisNotifier)(nil)

// NewRedisNotifier returns a notifier on c for the replicas whose session
// store uses prefix.
func NewRedisNotifier(c redis.UniversalClient, prefix string) *RedisNotifier {
	return &RedisNotifier{c: c, channel: prefix + "streams:ended"}
}

// message is one published batch. Keys are store keys (hashes of cookie
// values), never cookie values.
type message struct {
	Reason string   `json:"r"`
	Keys   []string `json:"k"`
}

// publishBatch bounds one message: an end of many sessions goes out in
// several.
const publishBatch = 500

// Publish sends keys to every listening replica.
func (n *RedisNotifier) Publish(ctx context.Context, keys []string, reason string) error {
	for len(keys) > 0 {
		batch := keys[:min(publishBatch, len(keys))]
		keys = keys[len(batch):]
		b, err := json.Marshal(message{Reason: reason, Keys: batch})
		if err != nil {
			return fmt.Errorf("streams: encode: %w", err)
		}
		if err := n.c.Publish(ctx, n.channel, b).Err(); err != nil {
			return fmt.Errorf("streams: publish: %w", err)
		}
	}
	return nil
}

// Listen follows the channel until ctx ends or the subscription fails.
func (n *RedisNotifier) Listen(ctx context.Context, ended func(keys []string, reason string)) error {
	ps := n.c.Subscribe(ctx)
	defer ps.Close()
	// A blocked Receive does not watch ctx: closing the subscription
	// ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	if err := ps.Subscribe(ctx, n.channel); err != nil {
		return fmt.Errorf("streams: subscribe: %w", err)
	}
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("streams: receive: %w", err)
		}
		switch m := msg.(type) {
		case *redis.Message:
			var batch message
			if json.Unmarshal([]byte(m.Payload), &batch) != nil {
				continue
			}
			ended(batch.Keys, label(batch.Reason))
		case error:
			return fmt.Errorf("streams: subscription: %w", m)
		}
	}
}

// label keeps a reason from the channel fit for a metric label: a short
// lower-case word, else "remote".
func label(reason string) string {
	if reason == "" || len(reason) > 32 || strings.ContainsFunc(reason, func(c rune) bool { return (c < 'a' || c > 'z') && c != '_' }) {
		return "remote"
	}
	return reason
}
