package apiauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// replayCapacity bounds the default replay cache: with the two-minute
// retention of a DPoP proof id, about 4 000 proofs a second. Past it, new
// proofs are refused (503) rather than old ids forgotten.
const replayCapacity = 1 << 19

var errReplayCacheFull = errors.New("apiauth: replay cache full")

// replayCache is the default Config.Once: the ids of recently accepted
// DPoP proofs, in memory, bounded, each kept for its ttl (RFC 9449 §11.1).
// It is safe for concurrent use. Keys are stored as truncated SHA-256
// hashes, so memory per entry is small and fixed.
type replayCache struct {
	now func() time.Time
	max int

	mu    sync.Mutex
	seen  map[[16]byte]time.Time
	queue []replayEntry // insertion order, which is expiry order: every ttl is the same
	head  int
}

type replayEntry struct {
	key [16]byte
	exp time.Time
}

func newReplayCache(now func() time.Time, max int) *replayCache {
	return &replayCache{now: now, max: max, seen: make(map[[16]byte]time.Time)}
}

// Once records key for ttl and reports whether it was not recorded yet.
func (c *replayCache) Once(_ context.Context, key string, ttl time.Duration) (bool, error) {
	sum := sha256.Sum256([]byte(key))
	var k [16]byte
	copy(k[:], sum[:])
	now := c.now()

	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head < len(c.queue) && !now.Before(c.queue[c.head].exp) {
		e := c.queue[c.head]
		if exp, ok := c.seen[e.key]; ok && exp.Equal(e.exp) {
			delete(c.seen, e.key)
		}
		c.queue[c.head] = replayEntry{}
		c.head++
	}
	if c.head > len(c.queue)/2 {
		c.queue = append(c.queue[:0], c.queue[c.head:]...)
		c.head = 0
	}
	if exp, ok := c.seen[k]; ok && now.Before(exp) {
		return false, nil
	}
	if len(c.seen) >= c.max {
		return false, errReplayCacheFull
	}
	exp := now.Add(ttl)
	c.seen[k] = exp
	c.queue = append(c.queue, replayEntry{key: k, exp: exp})
	return true, nil
}
