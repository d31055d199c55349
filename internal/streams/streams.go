package streams

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store"
)

// Records reads session records, as store.Store.Get does: store.ErrNotFound
// means the session has ended (a store never returns a record past its
// ExpiresAt); any other error means its state is unknown.
type Records interface {
	Get(ctx context.Context, key string) (*store.Record, error)
}

// Notifier carries the keys of ended sessions between replicas sharing a
// session store. Implementations are safe for concurrent use.
type Notifier interface {
	// Publish tells every replica listening that the sessions under keys
	// ended for reason.
	Publish(ctx context.Context, keys []string, reason string) error
	// Listen calls ended for every batch of keys any replica publishes,
	// until ctx ends (it then returns ctx's error) or the channel fails
	// (it returns that error; the caller listens again). ended must not
	// block for long.
	Listen(ctx context.Context, ended func(keys []string, reason string)) error
}

// Options configure a Registry.
type Options struct {
	// Records answers the checks of open streams' sessions: the session
	// store, shared by every app. Required.
	Records Records
	// Notifier, when set, carries ends to and from other replicas.
	Notifier Notifier
	// Interval is the period of the re-check of every open stream's
	// session. Default 2s.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives channel and store failures; nil discards.
	Logger *slog.Logger
	// OnOpen and OnClose, when set, are called as each stream opens and
	// closes (for metrics); reason is the session's end reason, "ended"
	// when a re-check found the session gone, or "done" when the stream
	// ended by itself.
	OnOpen  func()
	OnClose func(reason string)
}

// Registry tracks the streams open for sessions on this replica. It is
// safe for concurrent use.
type Registry struct {
	opts Options

	mu sync.Mutex
	// byKey holds the first of the calls tracked under each session key;
	// the others follow it through entry.next.
	byKey map[string]*entry

	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// entry is one tracked call. Its fields below key are guarded by the
// registry's mutex.
type entry struct {
	key    string
	app    string
	cancel context.CancelCauseFunc

	stream   bool      // the response stays open
	ended    string    // the session ended while the call was not yet a stream
	closed   bool      // closed (or finished); counted once
	conn     net.Conn  // the browser's hijacked connection, for upgrades
	deadline time.Time // when the session ends unless used
	absolute time.Time // when the session ends however used
	timer    *time.Timer
	// prev and next link the calls tracked under the same key.
	prev, next *entry
}

// calls yields the calls tracked under key, first to last; r.mu is held.
func (r *Registry) calls(key string) iter.Seq[*entry] {
	return func(yield func(*entry) bool) {
		for e := r.byKey[key]; e != nil; e = e.next {
			if !yield(e) {
				return
			}
		}
	}
}

// errSessionEnded is the cause of a tracked call's context when the stream
// was closed because its session ended.
var errSessionEnded = errors.New("streams: session ended")

// checkers bounds the concurrent session look-ups of one re-check round.
const checkers = 8

// New returns a Registry and starts its re-check and, with a Notifier,
// its listener. Close stops them.
func New(opts Options) (*Registry, error) {
	if opts.Records == nil {
		return nil, errors.New("streams: a session store is required")
	}
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &Registry{opts: opts, byKey: make(map[string]*entry), stop: stop}
	r.wg.Add(1)
	go r.recheckLoop(ctx)
	if opts.Notifier != nil {
		r.wg.Add(1)
		go r.listenLoop(ctx)
	}
	return r, nil
}

// Close stops the registry's background work, and closes the notifier
// when it has a Close method. Open streams stay open.
func (r *Registry) Close() {
	r.stop()
	r.wg.Wait()
	if c, ok := r.opts.Notifier.(interface{ Close() }); ok {
		r.closeOnce.Do(c.Close)
	}
}

// Call is one tracked call: serve its response through it (it is the
// http.ResponseWriter to write to), then call Done.
type Call struct {
	writer
	e entry
}

// Track registers a call forwarded for s, a session of app whose idle
// timeout is idle. req is the call's request; cancel must cancel the
// context it is served with, which the caller cancels once it is served.
// Serve the call through the returned Call, then call its Done. When the
// response turns out to be a stream (the writer is hijacked for an
// upgrade, or answers 2xx with an event stream or without a
// Content-Length), it is closed as soon as s ends: its context is canceled
// and a hijacked connection closed. An ordinary response is never cut.
func (r *Registry) Track(w http.ResponseWriter, req *http.Request, cancel context.CancelCauseFunc, app string, s *session.Session, idle time.Duration) *Call {
	// One allocation holds the call's writer and its registry entry.
	c := &Call{e: entry{key: s.Key, app: app, cancel: cancel, deadline: s.ExpiresAt(idle), absolute: s.AbsoluteExpiry}}
	c.writer = writer{ResponseWriter: w, reg: r, e: &c.e, head: req.Method == http.MethodHead}
	e := &c.e
	r.mu.Lock()
	if first := r.byKey[e.key]; first != nil {
		e.next, first.prev = first, e
	}
	r.byKey[e.key] = e
	r.mu.Unlock()
	return c
}

// Done unregisters the call when it has been served.
func (c *Call) Done() { c.reg.finish(&c.e) }

// End closes this replica's streams of the sessions under keys and tells
// the other replicas. It is the session manager's OnEnd hook.
func (r *Registry) End(ctx context.Context, keys []string, reason string) {
	r.endLocal(keys, reason)
	if n := r.opts.Notifier; n != nil && len(keys) > 0 {
		// Publishing must not hold up the request that ended the session;
		// a lost message is caught by the next re-check.
		keys := append([]string(nil), keys...)
		go func() {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := n.Publish(pctx, keys, reason); err != nil {
				r.opts.Logger.WarnContext(pctx, "streams: could not tell other replicas of ended sessions", "count", len(keys), "err", err)
			}
		}()
	}
}

// Open returns the number of open streams.
func (r *Registry) Open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k := range r.byKey {
		for e := range r.calls(k) {
			if e.stream && !e.closed {
				n++
			}
		}
	}
	return n
}

// EndApp closes this replica's streams of app's sessions, for an app the
// configuration no longer has: its sessions are accepted nowhere.
func (r *Registry) EndApp(app, reason string) {
	r.mu.Lock()
	var keys []string
	for k := range r.byKey {
		for e := range r.calls(k) {
			if e.app == app {
				keys = append(keys, k)
				break
			}
		}
	}
	r.mu.Unlock()
	r.endLocal(keys, reason)
}

// endLocal closes the streams of keys held here.
func (r *Registry) endLocal(keys []string, reason string) {
	var closing []*entry
	r.mu.Lock()
	for _, k := range keys {
		for e := range r.calls(k) {
			if e.closed {
				continue
			}
			if !e.stream {
				// Not a stream (yet): an ordinary response is not cut, but
				// one that turns into a stream closes at once.
				if e.ended == "" {
					e.ended = reason
				}
				continue
			}
			closing = append(closing, r.markClosed(e))
		}
	}
	r.mu.Unlock()
	for _, e := range closing {
		r.shut(e, reason)
	}
}

// markClosed marks an open stream closed; r.mu is held. The caller shuts
// it after unlocking.
func (r *Registry) markClosed(e *entry) *entry {
	e.closed = true
	if e.timer != nil {
		e.timer.Stop()
	}
	return e
}

// shut ends a stream marked closed: it is counted, then the upstream
// call's context is canceled and the browser's connection, when hijacked,
// closed. Counting first means the count never lags what the browser sees.
func (r *Registry) shut(e *entry, reason string) {
	if r.opts.OnClose != nil {
		r.opts.OnClose(reason)
	}
	e.cancel(errSessionEnded)
	r.mu.Lock()
	conn := e.conn
	r.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// opened makes e a stream; conn is the hijacked connection of an upgrade.
func (r *Registry) opened(e *entry, conn net.Conn) {
	r.mu.Lock()
	if e.closed {
		r.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		return
	}
	if e.stream {
		if conn != nil && e.conn == nil {
			e.conn = conn
		}
		r.mu.Unlock()
		return
	}
	e.stream, e.conn = true, conn
	ended := e.ended
	if ended == "" {
		e.timer = time.AfterFunc(max(e.deadline.Sub(r.opts.Now()), 0), func() { r.atDeadline(e) })
	} else {
		r.markClosed(e)
	}
	r.mu.Unlock()
	if r.opts.OnOpen != nil {
		r.opts.OnOpen()
	}
	if ended != "" {
		r.shut(e, ended)
	}
}

// finish unregisters e when its call returns.
func (r *Registry) finish(e *entry) {
	r.mu.Lock()
	switch {
	case e.prev != nil:
		e.prev.next = e.next
	case r.byKey[e.key] != e:
		// Not linked (finished before).
	case e.next != nil:
		r.byKey[e.key] = e.next
	default:
		delete(r.byKey, e.key)
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
	done := e.stream && !e.closed
	if done {
		r.markClosed(e)
	}
	r.mu.Unlock()
	if done && r.opts.OnClose != nil {
		r.opts.OnClose("done")
	}
}

// atDeadline checks e's session when it would expire: an expired session
// is ended by the check (closing its streams with reason idle or absolute);
// one used meanwhile gets a new deadline.
func (r *Registry) atDeadline(e *entry) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Interval)
	defer cancel()
	rec, err := r.check(ctx, e.key)
	if rec == nil || err != nil {
		// Ended (closed by check), or unknown: the periodic re-check
		// tries again.
		return
	}
	// Used meanwhile: the record's deadline moved.
	next := rec.ExpiresAt
	r.mu.Lock()
	defer r.mu.Unlock()
	if !e.closed {
		e.deadline = next
		wait := next.Sub(r.opts.Now())
		if wait <= 0 {
			// The store still has a session this clock says has expired:
			// leave it to the periodic re-check rather than spin.
			wait = r.opts.Interval
		}
		e.timer.Reset(wait)
	}
}

// check looks key's session up and closes its streams when it has ended.
// It returns the live record, or nil and no error when it has ended, or
// the store's error when that is unknown.
func (r *Registry) check(ctx context.Context, key string) (*store.Record, error) {
	rec, err := r.opts.Records.Get(ctx, key)
	switch {
	case err == nil:
		return rec, nil
	case errors.Is(err, store.ErrNotFound):
		r.endLocal([]string{key}, r.goneReason(key))
		return nil, nil
	}
	return nil, err
}

// goneReason names why key's session is gone when nobody said: a store
// stops returning a session at its deadline, so past the absolute one it
// is "absolute", past the last idle one known here "idle", else "ended"
// (ended on a replica whose word did not arrive).
func (r *Registry) goneReason(key string) string {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for e := range r.calls(key) {
		switch {
		case !now.Before(e.absolute):
			return "absolute"
		case !now.Before(e.deadline):
			return "idle"
		}
	}
	return "ended"
}

// recheckLoop checks every open stream's session each interval.
func (r *Registry) recheckLoop(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.recheck(ctx)
		}
	}
}

// recheck runs one round: one look-up per distinct session with an open
// stream, a few at a time, each bounded by the interval.
func (r *Registry) recheck(ctx context.Context) {
	r.mu.Lock()
	keys := make([]string, 0, len(r.byKey))
	for k := range r.byKey {
		for e := range r.calls(k) {
			if e.stream && !e.closed {
				keys = append(keys, k)
				break
			}
		}
	}
	r.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Interval)
	defer cancel()
	var (
		wg     sync.WaitGroup
		next   = make(chan string)
		failMu sync.Mutex
		failed int
		last   error
	)
	for range min(checkers, len(keys)) {
		wg.Go(func() {
			for k := range next {
				if _, err := r.check(ctx, k); err != nil {
					failMu.Lock()
					failed, last = failed+1, err
					failMu.Unlock()
				}
			}
		})
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	if failed > 0 {
		r.opts.Logger.WarnContext(ctx, "streams: could not check the sessions of open streams", "count", failed, "err", last)
	}
}

// listenLoop follows the notifier, listening again a second after it
// fails.
func (r *Registry) listenLoop(ctx context.Context) {
	defer r.wg.Done()
	for {
		err := r.opts.Notifier.Listen(ctx, r.endLocal)
		if ctx.Err() != nil {
			return
		}
		r.opts.Logger.WarnContext(ctx, "streams: the channel of ended sessions failed; re-checks continue", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
