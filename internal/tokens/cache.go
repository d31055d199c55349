package tokens

import (
	"context"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// maxCached bounds a token cache; past it, the cache starts over.
const maxCached = 10_000

// tokenCache keeps tokens by key until they are within skew of expiring,
// and fetches a missing key once however many callers ask for it at a
// time, as x/oauth2's ReuseTokenSource does for one token. It is safe for
// concurrent use.
type tokenCache struct {
	now  func() time.Time
	skew time.Duration
	max  int

	group singleflight.Group
	mu    sync.Mutex
	m     map[string]*oauth2.Token
}

func newTokenCache(now func() time.Time, skew time.Duration) *tokenCache {
	return &tokenCache{now: now, skew: skew, max: maxCached, m: map[string]*oauth2.Token{}}
}

// get returns the cached token for key when it is still usable for the
// skew, and otherwise the one fetch returns, which it caches. fetch runs
// detached from ctx's cancellation, since every waiter shares its result;
// its errors are returned as they are and nothing is cached.
func (c *tokenCache) get(ctx context.Context, key string, fetch func(context.Context) (*oauth2.Token, error)) (*oauth2.Token, error) {
	c.mu.Lock()
	t := c.m[key]
	c.mu.Unlock()
	if t != nil && usable(t.Expiry, c.now(), c.skew) {
		return t, nil
	}
	v, err, _ := c.group.Do(key, func() (any, error) {
		t, err := fetch(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if len(c.m) >= c.max {
			clear(c.m)
		}
		c.m[key] = t
		c.mu.Unlock()
		return t, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*oauth2.Token), nil
}

// usable reports whether a token expiring at expiry (zero: never) can be
// used at now for at least skew.
func usable(expiry, now time.Time, skew time.Duration) bool {
	return expiry.IsZero() || now.Add(skew).Before(expiry)
}
