package memstore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/sweep"
	"github.com/gatehouse-bff/gatehouse/store"
)

var _ store.Store = (*memStore)(nil)

// DefaultSweepInterval is how often the background sweeper runs when
// Options.SweepInterval is zero.
const DefaultSweepInterval = time.Minute

// Options configure a memStore. The zero value is ready to use.
type Options struct {
	// Now is the clock that decides expiry; nil means time.Now.
	Now func() time.Time
	// SweepInterval is how often a background goroutine removes expired
	// records and one-time keys. Zero means DefaultSweepInterval; a
	// negative value starts no goroutine (expired entries then stay in
	// memory, invisible).
	SweepInterval time.Duration
	// Logger receives a debug line after each sweep that removed records;
	// nil discards it.
	Logger *slog.Logger
}

// memStore is an in-memory session store. It is safe for concurrent use.
type memStore struct {
	now func() time.Time
	log *slog.Logger

	mu    sync.RWMutex
	recs  map[string]*store.Record
	bySID map[indexKey]map[string]struct{}
	bySub map[indexKey]map[string]struct{}
	once  map[string]time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// indexKey names one index entry. A struct key keeps (issuer, value) pairs
// apart however their strings would join.
type indexKey struct{ iss, val string }

// New returns an empty store and starts its sweeper.
func New(opts Options) store.Store {
	return newStore(opts)
}

// New returns an empty store and starts its sweeper.
func newStore(opts Options) *memStore {
	s := &memStore{
		now:   opts.Now,
		recs:  make(map[string]*store.Record),
		bySID: make(map[indexKey]map[string]struct{}),
		bySub: make(map[indexKey]map[string]struct{}),
		once:  make(map[string]time.Time),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if interval < 0 {
		close(s.done)
		return s
	}
	go s.sweepLoop(interval)
	return s
}

func (s *memStore) sweepLoop(interval time.Duration) {
	defer close(s.done)
	sweep.Every(interval, s.stop, func() {
		start := time.Now()
		if n := s.sweep(s.now()); n > 0 {
			s.log.Debug(sweep.Done, "count", n, "took", time.Since(start))
		}
	})
}

// Close stops the background sweeper. The records stay readable; Close may
// be called more than once.
func (s *memStore) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

func clone(r *store.Record) *store.Record {
	c := *r
	c.Data = bytes.Clone(r.Data)
	return &c
}

// live reports whether r exists and has not expired at now.
func live(r *store.Record, now time.Time) bool {
	return r != nil && r.ExpiresAt.After(now)
}

// Get returns a copy of the live record stored under key.
func (s *memStore) Get(ctx context.Context, key string) (*store.Record, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.recs[key]
	if !live(r, now) {
		return nil, store.ErrNotFound
	}
	return clone(r), nil
}

// Create stores a copy of rec, replacing any record under the same key.
func (s *memStore) Create(ctx context.Context, rec *store.Record) error {
	c := clone(rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.recs[c.Key]; old != nil {
		s.unindex(old)
	}
	s.put(c)
	return nil
}

// Update replaces the live record under rec.Key.
func (s *memStore) Update(ctx context.Context, rec *store.Record) error {
	c := clone(rec)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.recs[c.Key]
	if !live(old, now) {
		return store.ErrNotFound
	}
	if c.Data == nil {
		c.Data = old.Data
	}
	s.unindex(old)
	s.put(c)
	return nil
}

// Delete removes the record under key, if any.
func (s *memStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(key)
	return nil
}

// DeleteMatching removes the records f selects and returns the keys of
// those that were live.
func (s *memStore) DeleteMatching(ctx context.Context, f store.Filter) ([]string, error) {
	if !f.Valid() {
		return nil, store.ErrInvalidFilter
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []string{}
	for k := range s.candidates(f) {
		r := s.recs[k]
		if r == nil || !f.Match(r) {
			continue
		}
		if live(r, now) {
			keys = append(keys, k)
		}
		s.remove(k)
	}
	return keys, nil
}

// List returns copies of the live records f selects.
func (s *memStore) List(ctx context.Context, f store.Filter) ([]*store.Record, error) {
	if !f.Valid() {
		return nil, store.ErrInvalidFilter
	}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*store.Record{}
	for k := range s.candidates(f) {
		if r := s.recs[k]; live(r, now) && f.Match(r) {
			out = append(out, clone(r))
		}
	}
	return out, nil
}

// candidates returns the keys of the index entry f narrows to; s.mu must be
// held. Callers still check every record with f.Match.
func (s *memStore) candidates(f store.Filter) map[string]struct{} {
	if f.SID != "" {
		return s.bySID[indexKey{f.Issuer, f.SID}]
	}
	return s.bySub[indexKey{f.Issuer, f.Subject}]
}

// Ping always succeeds: the records are in this process.
func (s *memStore) Ping(ctx context.Context) error { return nil }

// Once records key for ttl and reports whether it was not recorded yet.
func (s *memStore) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("memstore: once ttl must be positive")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.once[key]; ok && exp.After(now) {
		return false, nil
	}
	s.once[key] = now.Add(ttl)
	return true, nil
}

// sweep removes the records and one-time keys that expired at or before now
// and returns how many records it removed.
func (s *memStore) sweep(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, seen := 0, 0
	// The lock is let go every sweepBatch entries, so that requests are
	// served while a million records are scanned. Go's map iteration
	// allows the map to change between steps; the mutex orders them.
	pause := func() {
		if seen++; seen%sweepBatch == 0 {
			s.mu.Unlock()
			runtime.Gosched()
			s.mu.Lock()
		}
	}
	for k, r := range s.recs {
		if !live(r, now) {
			s.remove(k)
			n++
		}
		pause()
	}
	for k, exp := range s.once {
		if !exp.After(now) {
			delete(s.once, k)
		}
		pause()
	}
	return n
}

// sweepBatch is how many entries the sweep visits between letting go of
// the lock.
const sweepBatch = 1000

// put stores r and indexes it; s.mu must be held for writing.
func (s *memStore) put(r *store.Record) {
	s.recs[r.Key] = r
	if r.SID != "" {
		addIndex(s.bySID, indexKey{r.Issuer, r.SID}, r.Key)
	}
	addIndex(s.bySub, indexKey{r.Issuer, r.Subject}, r.Key)
}

// remove deletes the record under key and its index entries; s.mu must be
// held for writing.
func (s *memStore) remove(key string) {
	if r := s.recs[key]; r != nil {
		s.unindex(r)
		delete(s.recs, key)
	}
}

func (s *memStore) unindex(r *store.Record) {
	if r.SID != "" {
		removeIndex(s.bySID, indexKey{r.Issuer, r.SID}, r.Key)
	}
	removeIndex(s.bySub, indexKey{r.Issuer, r.Subject}, r.Key)
}

func addIndex(idx map[indexKey]map[string]struct{}, ik indexKey, key string) {
	set := idx[ik]
	if set == nil {
		set = make(map[string]struct{})
		idx[ik] = set
	}
	set[key] = struct{}{}
}

func removeIndex(idx map[indexKey]map[string]struct{}, ik indexKey, key string) {
	set := idx[ik]
	delete(set, key)
	if len(set) == 0 {
		delete(idx, ik)
	}
}
