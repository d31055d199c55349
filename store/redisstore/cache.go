package redisstore

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-bff/gatehouse/store"
)

// localCache keeps records read from Redis for a short time, so that the
// session read on every API call need not cross the network.
//
// It never serves an ended session beyond what the store already knows:
//   - every change (update, touch, delete, logout by sid or subject) is
//     published on a channel, and every store evicts the keys at once; the
//     writing store evicts before its write returns;
//   - entries are used only while the subscription is up: when it breaks
//     (Redis down, connection lost) the cache is emptied and bypassed until
//     the subscription is back, so a missed message cannot leave a stale
//     entry behind;
//   - an entry read concurrently with an eviction is not kept (a sequence
//     number guards the gap between the read and the insert);
//   - entries expire after the TTL in any case, and never outlive the
//     record's own ExpiresAt.
type localCache struct {
	ttl     time.Duration
	channel string

	mu      sync.Mutex
	entries map[string]cacheEntry
	seq     uint64 // bumped by every eviction
	healthy bool   // the invalidation subscription is up

	ps   *redis.PubSub
	stop func()
	done chan struct{}
}

type cacheEntry struct {
	rec *store.Record
	at  time.Time
}

// maxCached bounds the cache; past it, it starts over.
const maxCached = 100_000

func newLocalCache(c redis.UniversalClient, channel string, ttl time.Duration) *localCache {
	ctx, cancel := context.WithCancel(context.Background())
	lc := &localCache{ttl: ttl, channel: channel, entries: map[string]cacheEntry{}, stop: cancel, done: make(chan struct{})}
	// Subscribe returns at once; the subscription completes in the
	// background, and the cache stays off until Redis confirms it.
	lc.ps = c.Subscribe(ctx, channel)
	go lc.listen(ctx)
	return lc
}

// listen follows the invalidation channel until ctx ends. go-redis
// resubscribes after a broken connection; the cache is off in between.
func (lc *localCache) listen(ctx context.Context) {
	defer close(lc.done)
	for {
		msg, err := lc.ps.Receive(ctx)
		if err != nil {
			lc.setHealthy(false)
			if ctx.Err() != nil {
				return
			}
			// Back off a little before go-redis reconnects on the next call.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			lc.setHealthy(m.Kind == "subscribe")
		case *redis.Message:
			var keys []string
			if json.Unmarshal([]byte(m.Payload), &keys) != nil {
				// Unreadable: evict everything rather than guess.
				lc.setHealthy(true)
				continue
			}
			lc.evict(keys...)
		}
	}
}

func (lc *localCache) setHealthy(up bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	// Whatever happened while the subscription was down is unknown: start
	// from nothing either way.
	clear(lc.entries)
	lc.seq++
	lc.healthy = up
}

// get returns a copy of the cached record under key, if usable at now.
func (lc *localCache) get(key string, now time.Time) (*store.Record, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	e, ok := lc.entries[key]
	if !ok || !lc.healthy {
		return nil, false
	}
	if now.Sub(e.at) >= lc.ttl || !e.rec.ExpiresAt.After(now) {
		delete(lc.entries, key)
		return nil, false
	}
	return cloneRecord(e.rec), true
}

// mark returns the eviction sequence before a read from Redis.
func (lc *localCache) mark() uint64 {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.seq
}

// put keeps rec unless an eviction happened since mark was taken.
func (lc *localCache) put(key string, rec *store.Record, mark uint64, now time.Time) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if !lc.healthy || lc.seq != mark {
		return
	}
	if len(lc.entries) >= maxCached {
		clear(lc.entries)
	}
	lc.entries[key] = cacheEntry{rec: cloneRecord(rec), at: now}
}

func (lc *localCache) evict(keys ...string) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, k := range keys {
		delete(lc.entries, k)
	}
	lc.seq++
}

func (lc *localCache) close() {
	lc.stop()
	// Closing the subscription unblocks a Receive waiting on the network.
	lc.ps.Close()
	<-lc.done
	lc.setHealthy(false)
}

func cloneRecord(r *store.Record) *store.Record {
	c := *r
	c.Data = append([]byte(nil), r.Data...)
	return &c
}
