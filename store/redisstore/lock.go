package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// locker is a lock shared by every process using the same Redis: SET NX PX
// with a random owner token, released only by its owner. It serialises
// refreshes of one session across Gatehouse replicas (RFC 9700 §4.14.2:
// with rotating refresh tokens, two replicas spending the same token would
// revoke the whole family). It is safe for concurrent use.
type locker struct {
	c      redis.UniversalClient
	prefix string
	// poll bounds the wait between attempts while another owner holds it.
	poll time.Duration
}

// newLocker returns a locker whose keys start with prefix, the store's, so
// they share its Cluster slot.
func newLocker(client redis.UniversalClient, prefix string) *locker {
	return &locker{c: client, prefix: prefix, poll: 25 * time.Millisecond}
}

// unlockScript deletes the lock only when it still holds our token, so a
// lock that expired and was taken by another owner is never released by us.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`)

// Lock blocks until it holds the lock named key, for at most ttl, or ctx
// ends. The returned function releases it.
func (l *locker) Lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	b := make([]byte, 16)
	rand.Read(b)
	owner := hex.EncodeToString(b)
	name := l.prefix + "lock:" + indexHash("lock", key)
	wait := l.poll
	for {
		ok, err := l.c.SetNX(ctx, name, owner, ttl).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: lock: %w", err)
		}
		if ok {
			return func() {
				// Release even when the caller's context has ended.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				unlockScript.Run(ctx, l.c, []string{name}, owner)
			}, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("redisstore: lock: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}
