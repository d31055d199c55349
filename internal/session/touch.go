package session

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
)

// maxTouching bounds the slides written in the background at once. Past
// it a slide is written on the request path, as without a Toucher, so a
// store slower than the traffic slows requests instead of piling up
// goroutines.
const maxTouching = 256

// touchTimeout bounds one background slide write.
const touchTimeout = 10 * time.Second

// A Toucher writes sliding deadlines back to the store after the request
// that moved them has gone on, so that a lookup on the request path is one
// read even when it is due for a slide (with bolt a write is an fsync).
// Nothing that decides access waits on it: the record was read and found
// live before the slide, an ended session stays ended (Update writes no
// record that is gone), and a slide that fails or is lost only leaves the
// earlier, shorter deadline in place. The handler waits for the write
// before it returns (Session.SlideWritten), so the write runs alongside
// the handler's work instead of before it, and a load of a session whose
// slide is still being written waits for that write.
//
// One Toucher serves every Manager of a gateway. It is safe for concurrent
// use; Wait returns when every slide started has been written.
type Toucher struct {
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]chan struct{} // key -> closed when its slide is written
	// writing is len(pending), read without the lock so that a load with
	// no slide in flight anywhere takes no lock.
	writing atomic.Int64
	wg      sync.WaitGroup
}

// NewToucher returns a Toucher that logs failed writes to log (nil
// discards them).
func NewToucher(log *slog.Logger) *Toucher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Toucher{log: log, pending: make(map[string]chan struct{})}
}

// settled waits until no slide of key is being written, or ctx ends.
func (t *Toucher) settled(ctx context.Context, key string) error {
	if t.writing.Load() == 0 {
		return nil
	}
	t.mu.Lock()
	done, ok := t.pending[key]
	t.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// start writes rec, a slide (nil Data), to st in the background and
// returns a channel closed when it is written. It returns nil, starting
// nothing, when too many slides are being written already; the caller then
// writes it itself.
func (t *Toucher) start(ctx context.Context, st store.Store, rec *store.Record) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if done, ok := t.pending[rec.Key]; ok {
		return done // a concurrent load of the session is writing its slide
	}
	if len(t.pending) >= maxTouching {
		return nil
	}
	done := make(chan struct{})
	t.pending[rec.Key] = done
	t.writing.Add(1)
	t.wg.Add(1)
	go t.write(context.WithoutCancel(ctx), st, rec, done)
	return done
}

func (t *Toucher) write(ctx context.Context, st store.Store, rec *store.Record, done chan struct{}) {
	defer t.wg.Done()
	wctx, cancel := context.WithTimeout(ctx, touchTimeout)
	err := st.Update(wctx, rec)
	cancel()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.log.WarnContext(ctx, "session slide not written; the next request retries it", "err", err)
	}
	t.mu.Lock()
	delete(t.pending, rec.Key)
	t.writing.Add(-1)
	t.mu.Unlock()
	close(done)
}

// Wait blocks until every slide started so far has been written (or has
// failed). The gateway calls it before closing its store.
func (t *Toucher) Wait() { t.wg.Wait() }
