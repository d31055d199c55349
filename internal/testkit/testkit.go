// Package testkit holds what Gatehouse's tests share: a settable clock and
// a store that fails on purpose. It is imported by tests only.
package testkit

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
)

// Clock is a settable clock, safe for concurrent use. The zero value reads
// 2030-01-02T03:04:05Z.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's reading.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now.Add(d)
}

// Set makes the clock read t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// FailingStore is a store.Store whose every call but Close returns Err.
// With a nil Err every call succeeds, Get with a nil record, so a wrapper
// can be tested on its success path. Seen, when set, is called with each
// call's context first.
type FailingStore struct {
	Err  error
	Seen func(ctx context.Context)
}

var _ store.Store = (*FailingStore)(nil)

func (f *FailingStore) fail(ctx context.Context) error {
	if f.Seen != nil {
		f.Seen(ctx)
	}
	return f.Err
}

// Get fails.
func (f *FailingStore) Get(ctx context.Context, _ string) (*store.Record, error) {
	return nil, f.fail(ctx)
}

// Create fails.
func (f *FailingStore) Create(ctx context.Context, _ *store.Record) error { return f.fail(ctx) }

// Update fails.
func (f *FailingStore) Update(ctx context.Context, _ *store.Record) error { return f.fail(ctx) }

// Delete fails.
func (f *FailingStore) Delete(ctx context.Context, _ string) error { return f.fail(ctx) }

// DeleteMatching fails.
func (f *FailingStore) DeleteMatching(ctx context.Context, _ store.Filter) ([]string, error) {
	return []string{}, f.fail(ctx)
}

// List fails.
func (f *FailingStore) List(ctx context.Context, _ store.Filter) ([]*store.Record, error) {
	return []*store.Record{}, f.fail(ctx)
}

// Once fails.
func (f *FailingStore) Once(ctx context.Context, _ string, _ time.Duration) (bool, error) {
	return false, f.fail(ctx)
}

// Ping fails.
func (f *FailingStore) Ping(ctx context.Context) error { return f.fail(ctx) }

// Close succeeds.
func (f *FailingStore) Close() error { return nil }
