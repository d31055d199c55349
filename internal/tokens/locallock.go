package tokens

import (
	"context"
	"sync"
	"time"
)

// NewLocalLocker returns a Locker for one process: refreshes of a session
// are serialised across every Manager that shares it, such as the
// managers a configuration reload replaces. ttl is not needed in one
// process: a holder that returns always unlocks.
func NewLocalLocker() Locker { return &localLocker{held: map[string]chan struct{}{}} }

type localLocker struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when released
}

func (l *localLocker) Lock(ctx context.Context, key string, _ time.Duration) (func(), error) {
	for {
		l.mu.Lock()
		wait, busy := l.held[key]
		if !busy {
			done := make(chan struct{})
			l.held[key] = done
			l.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					l.mu.Lock()
					delete(l.held, key)
					l.mu.Unlock()
					close(done)
				})
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
