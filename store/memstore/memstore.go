package memstore

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/session"
)

var (
	_ session.Store     = (*Store)(nil)
	_ session.Lister    = (*Store)(nil)
	_ session.OnceStore = (*Store)(nil)
	_ session.Sweeper   = (*Store)(nil)
)

// DefaultSweepInterval is how often the background sweeper runs when
// Options.SweepInterval is zero.
const DefaultSweepInterval = time.Minute

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock that decides expiry; nil means time.Now.
	Now func() time.Time
	// SweepInterval is how often a background goroutine removes expired
	// records and one-time keys. Zero means DefaultSweepInterval; a
	// negative value starts no goroutine (expired entries then stay in
	// memory, invisible, until Sweep is called).
	SweepInterval time.Duration
}

// Store is an in-memory session store. It is safe for concurrent use.
type Store struct {
	now func() time.Time

	mu    sync.RWMutex
	recs  map[string]*session.Record
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
func New(opts Options) *Store {
	s := &Store{
		now:   opts.Now,
		recs:  make(map[string]*session.Record),
		bySID: make(map[indexKey]map[string]struct{}),
		bySub: make(map[indexKey]map[string]struct{}),
		once:  make(map[string]time.Time),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
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

func (s *Store) sweepLoop(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep(context.Background(), s.now())
		}
	}
}

// Close stops the background sweeper. The records stay readable; Close may
// be called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

func clone(r *session.Record) *session.Record {
	c := *r
	c.Data = bytes.Clone(r.Data)
	return &c
}

// live reports whether r exists and has not expired at now.
func live(r *session.Record, now time.Time) bool {
	return r != nil && r.ExpiresAt.After(now)
}

// Get returns a copy of the live record stored under key.
func (s *Store) Get(ctx context.Context, key string) (*session.Record, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.recs[key]
	if !live(r, now) {
		return nil, session.ErrNotFound
	}
	return clone(r), nil
}

// Create stores a copy of rec, replacing any record under the same key.
func (s *Store) Create(ctx context.Context, rec *session.Record) error {
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
func (s *Store) Update(ctx context.Context, rec *session.Record) error {
	c := clone(rec)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.recs[c.Key]
	if !live(old, now) {
		return session.ErrNotFound
	}
	s.unindex(old)
	s.put(c)
	return nil
}

// Touch moves the LastSeen and ExpiresAt of the live record under key.
func (s *Store) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recs[key]
	if !live(r, now) {
		return session.ErrNotFound
	}
	r.LastSeen, r.ExpiresAt = lastSeen, expiresAt
	return nil
}

// Delete removes the record under key, if any.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(key)
	return nil
}

// DeleteBySID removes the records of issuer with the given sid and returns
// the keys of those that were live. An empty sid matches nothing.
func (s *Store) DeleteBySID(ctx context.Context, issuer, sid string) ([]string, error) {
	if sid == "" {
		return []string{}, nil
	}
	return s.deleteIndexed(s.bySID, indexKey{issuer, sid}), nil
}

// DeleteBySubject removes the records of issuer for subject and returns the
// keys of those that were live.
func (s *Store) DeleteBySubject(ctx context.Context, issuer, subject string) ([]string, error) {
	return s.deleteIndexed(s.bySub, indexKey{issuer, subject}), nil
}

func (s *Store) deleteIndexed(idx map[indexKey]map[string]struct{}, ik indexKey) []string {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []string{}
	for k := range idx[ik] {
		if live(s.recs[k], now) {
			keys = append(keys, k)
		}
		s.remove(k)
	}
	return keys
}

// ListBySubject returns copies of the live records of issuer for subject.
func (s *Store) ListBySubject(ctx context.Context, issuer, subject string) ([]*session.Record, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*session.Record{}
	for k := range s.bySub[indexKey{issuer, subject}] {
		if r := s.recs[k]; live(r, now) {
			out = append(out, clone(r))
		}
	}
	return out, nil
}

// Once records key for ttl and reports whether it was not recorded yet.
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
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

// Sweep removes the records and one-time keys that expired at or before now
// and returns how many records it removed.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, r := range s.recs {
		if !live(r, now) {
			s.remove(k)
			n++
		}
	}
	for k, exp := range s.once {
		if !exp.After(now) {
			delete(s.once, k)
		}
	}
	return n, nil
}

// put stores r and indexes it; s.mu must be held for writing.
func (s *Store) put(r *session.Record) {
	s.recs[r.Key] = r
	if r.SID != "" {
		addIndex(s.bySID, indexKey{r.Issuer, r.SID}, r.Key)
	}
	addIndex(s.bySub, indexKey{r.Issuer, r.Subject}, r.Key)
}

// remove deletes the record under key and its index entries; s.mu must be
// held for writing.
func (s *Store) remove(key string) {
	if r := s.recs[key]; r != nil {
		s.unindex(r)
		delete(s.recs, key)
	}
}

func (s *Store) unindex(r *session.Record) {
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
