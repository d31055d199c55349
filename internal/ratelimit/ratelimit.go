package ratelimit

import (
	"container/list"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// DefaultMaxClients is the number of client buckets a Limiter keeps when
// Options.MaxClients is zero.
const DefaultMaxClients = 10000

// Options configures a Limiter. The zero value of each field is documented.
type Options struct {
	// Rate is how many requests per second one client may make in the long
	// run. Zero or rate.Inf means no limit: every request is allowed and no
	// memory is used.
	Rate rate.Limit
	// Burst is how many requests a client may make at once. Zero means 1.
	Burst int
	// MaxClients bounds how many clients are tracked. Zero means
	// DefaultMaxClients. When it is reached, idle clients and then the
	// least recently seen one are forgotten; a forgotten client starts
	// again with a full burst.
	MaxClients int
	// TTL is how long an idle client is remembered. Zero means the time a
	// bucket takes to refill completely (Burst/Rate), after which
	// forgetting it changes nothing.
	TTL time.Duration
	// Now returns the current time. Zero means time.Now.
	Now func() time.Time
	// OnLimited, when set, is called by Handler for each request it
	// refuses (for example to count it in metrics).
	OnLimited func(*http.Request)
}

// Limiter limits requests per client address. It is safe for concurrent
// use.
type Limiter struct {
	opts Options

	mu      sync.Mutex
	clients map[netip.Addr]*list.Element // of *client
	lru     *list.List                   // front: most recently seen
}

type client struct {
	key      netip.Addr
	bucket   *rate.Limiter
	lastSeen time.Time
}

// New returns a Limiter with the given options.
func New(opts Options) *Limiter {
	if opts.Burst <= 0 {
		opts.Burst = 1
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TTL <= 0 && opts.Rate > 0 && opts.Rate != rate.Inf {
		opts.TTL = time.Duration(math.Ceil(float64(opts.Burst) / float64(opts.Rate) * float64(time.Second)))
	}
	return &Limiter{opts: opts, clients: make(map[netip.Addr]*list.Element), lru: list.New()}
}

// Allow reports whether the client at ip may make a request now, and
// counts the request if so.
func (l *Limiter) Allow(ip netip.Addr) bool {
	ok, _ := l.allow(ip)
	return ok
}

// Handler wraps next so that a client over its limit is answered 429 Too
// Many Requests with a JSON body {"error":"rate_limited"} and a Retry-After
// header (whole seconds) instead of reaching next. clientIP returns the
// address to limit the request by.
func (l *Limiter) Handler(clientIP func(*http.Request) netip.Addr, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := l.allow(clientIP(r))
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		if l.opts.OnLimited != nil {
			l.opts.OnLimited(r)
		}
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(wait), 10))
		httpx.JSONError(w, r, http.StatusTooManyRequests, "rate_limited", "")
	})
}

// Len returns how many clients the Limiter currently remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// Key returns the address ip is limited under: IPv4 (and IPv4-mapped IPv6)
// addresses as they are, IPv6 addresses as their /64 network, without zone.
// An invalid address is its own key, so requests whose client cannot be
// determined share one bucket.
func Key(ip netip.Addr) netip.Addr {
	if !ip.IsValid() {
		return netip.Addr{}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip
	}
	return netip.PrefixFrom(ip, 64).Masked().Addr()
}

// allow reports whether ip may make a request now and, if not, how long
// until it may.
func (l *Limiter) allow(ip netip.Addr) (bool, time.Duration) {
	if l.opts.Rate == rate.Inf || l.opts.Rate <= 0 {
		return true, 0
	}
	key := Key(ip)
	now := l.opts.Now()

	l.mu.Lock()
	defer l.mu.Unlock()
	var c *client
	if e, ok := l.clients[key]; ok {
		c = e.Value.(*client)
		if now.Sub(c.lastSeen) > l.opts.TTL {
			// Idle long enough to be forgotten: start afresh, exactly as
			// if eviction had already happened.
			c.bucket = rate.NewLimiter(l.opts.Rate, l.opts.Burst)
		}
		l.lru.MoveToFront(e)
	} else {
		l.evict(now)
		c = &client{key: key, bucket: rate.NewLimiter(l.opts.Rate, l.opts.Burst)}
		l.clients[key] = l.lru.PushFront(c)
	}
	c.lastSeen = now
	if c.bucket.AllowN(now, 1) {
		return true, 0
	}
	// One token is missing at most the fraction the bucket lacks.
	missing := 1 - c.bucket.TokensAt(now)
	return false, time.Duration(missing / float64(l.opts.Rate) * float64(time.Second))
}

// evict makes room for one more client: it drops clients idle longer than
// TTL from the back of the LRU list, then, if the Limiter is still full,
// the least recently seen client. l.mu must be held.
func (l *Limiter) evict(now time.Time) {
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		c := e.Value.(*client)
		if len(l.clients) < l.opts.MaxClients && now.Sub(c.lastSeen) <= l.opts.TTL {
			return
		}
		l.lru.Remove(e)
		delete(l.clients, c.key)
	}
}

// retryAfterSeconds rounds d up to whole seconds, at least 1 (RFC 9110
// §10.2.3 gives Retry-After in seconds).
func retryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
