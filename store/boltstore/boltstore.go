package boltstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse-bff/gatehouse/internal/sweep"
	"github.com/gatehouse-bff/gatehouse/store"
)

var _ store.Store = (*boltStore)(nil)

// batchDelay is how long a write waits for others to share its
// transaction.
const batchDelay = time.Millisecond

// pageSize is the page size of a new file (an existing file keeps its
// own). A sealed session of about 2.6 KB fills a node of two to four
// records; bbolt gives a node whole pages, so with 4 KB pages a quarter
// of the space was rounding. 2 KB pages waste a tenth.
const pageSize = 2048

// How full bbolt packs the pages of an index when it splits them (its
// default is half). Expiry keys start with the time, and new records
// expire last: that index grows at its end, where half-full pages would
// stay half full. Subjects come in order from some providers (time-ordered
// ids) and at random from others; 0.7 keeps pages at least about 60% full
// either way, where half leaves ordered ones at 47% (random ones: 66%).
const (
	expiryFill  = 0.9
	subjectFill = 0.7
)

// Defaults for zero Options fields.
const (
	DefaultSweepInterval = time.Minute
	DefaultOpenTimeout   = time.Second
)

// ErrLocked is returned by Open when another process, or another open boltStore
// in this process, holds the database file.
var ErrLocked = errors.New("boltstore: database file is locked by another process")

// formatVersion is the layout of the buckets and values described in the
// package documentation.
const formatVersion = 1

var (
	bucketMeta       = []byte("meta")
	bucketRecords    = []byte("records")
	bucketSID        = []byte("sid")
	bucketSub        = []byte("sub")
	bucketExpiry     = []byte("expiry")
	bucketOnce       = []byte("once")
	bucketOnceExpiry = []byte("once-expiry")
	keyVersion       = []byte("version")
)

// Options configure a boltStore. The zero value is ready to use.
type Options struct {
	// Now is the clock that decides expiry; nil means time.Now.
	Now func() time.Time
	// SweepInterval is how often a background goroutine removes expired
	// records and one-time keys. Zero means DefaultSweepInterval; a
	// negative value starts no goroutine.
	SweepInterval time.Duration
	// OpenTimeout bounds how long Open waits for the file lock. Zero means
	// DefaultOpenTimeout.
	OpenTimeout time.Duration
	// Logger receives background sweep failures; nil discards them.
	Logger *slog.Logger
}

// boltStore is a session store in a bbolt file. It is safe for concurrent use.
type boltStore struct {
	db   *bolt.DB
	path string
	now  func() time.Time
	log  *slog.Logger

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens or creates the database file at path and starts the sweeper.
func Open(path string, opts Options) (store.Store, error) {
	s, err := openFile(path, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Open opens or creates the database file at path and starts the sweeper.
func openFile(path string, opts Options) (*boltStore, error) {
	timeout := opts.OpenTimeout
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	// The free page list is not written at each commit (after a sweep it
	// runs to megabytes, and every write paid for it); Open rebuilds it by
	// walking the file instead, about 2.6 s for a million sessions.
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        timeout,
		PageSize:       pageSize,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %s for the lock)", ErrLocked, path, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := db.Update(initBuckets); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	// Writes on the request path (Create, Update, Delete, Once) are
	// batched: writes that arrive together share one transaction and one
	// fsync, and a lone write waits at most batchDelay for company.
	db.MaxBatchDelay = batchDelay
	s := &boltStore{
		db:   db,
		path: path,
		now:  opts.Now,
		log:  opts.Logger,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if interval < 0 {
		close(s.done)
	} else {
		go s.sweepLoop(interval)
	}
	return s, nil
}

func initBuckets(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	switch v := meta.Get(keyVersion); {
	case v == nil:
		if err := meta.Put(keyVersion, []byte{formatVersion}); err != nil {
			return err
		}
	case len(v) != 1 || v[0] != formatVersion:
		return fmt.Errorf("boltstore: unsupported format version %v", v)
	}
	for _, name := range [][]byte{bucketRecords, bucketSID, bucketSub, bucketExpiry, bucketOnce, bucketOnceExpiry} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

func (s *boltStore) sweepLoop(interval time.Duration) {
	defer close(s.done)
	sweep.Every(interval, s.stop, func() {
		start := time.Now()
		n, err := s.sweep(s.now())
		if err != nil {
			s.log.Error("boltstore: sweep failed", "path", s.path, "err", err)
		}
		if n > 0 {
			s.log.Debug(sweep.Done, "path", s.path, "count", n, "took", time.Since(start))
		}
	})
}

// Close stops the sweeper and closes the file, releasing its lock. It may be
// called more than once.
func (s *boltStore) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.closeErr = s.db.Close()
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("boltstore: close %s: %w", s.path, s.closeErr)
		}
	})
	return s.closeErr
}

// Ping reports whether the database is open and readable.
func (s *boltStore) Ping(ctx context.Context) error {
	if err := s.db.View(func(tx *bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("boltstore: ping: %w", err)
	}
	return nil
}

// Get returns the live record stored under key.
func (s *boltStore) Get(ctx context.Context, key string) (*store.Record, error) {
	now := s.now()
	var rec *store.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		if !live(r, now) {
			return store.ErrNotFound
		}
		rec = r
		return nil
	})
	if err != nil {
		return nil, wrap("get", err)
	}
	return rec, nil
}

// Create stores rec, replacing any record under the same key.
func (s *boltStore) Create(ctx context.Context, rec *store.Record) error {
	return wrap("create", s.db.Batch(func(tx *bolt.Tx) error {
		if _, err := removeRecord(tx, rec.Key); err != nil {
			return err
		}
		return putRecord(tx, rec)
	}))
}

// Update replaces the live record under rec.Key.
func (s *boltStore) Update(ctx context.Context, rec *store.Record) error {
	now := s.now()
	return wrap("update", s.db.Batch(func(tx *bolt.Tx) error {
		old, err := getRecord(tx, rec.Key)
		if err != nil {
			return err
		}
		if !live(old, now) {
			return store.ErrNotFound
		}
		put := rec
		if rec.Data == nil {
			r := *rec
			r.Data = old.Data
			put = &r
		}
		if _, err := removeRecord(tx, rec.Key); err != nil {
			return err
		}
		return putRecord(tx, put)
	}))
}

// Delete removes the record under key, if any.
func (s *boltStore) Delete(ctx context.Context, key string) error {
	return wrap("delete", s.db.Batch(func(tx *bolt.Tx) error {
		_, err := removeRecord(tx, key)
		return err
	}))
}

// DeleteMatching removes the records f selects and returns the keys of
// those that were live.
func (s *boltStore) DeleteMatching(ctx context.Context, f store.Filter) ([]string, error) {
	if !f.Valid() {
		return nil, store.ErrInvalidFilter
	}
	now := s.now()
	var deleted []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		deleted = []string{}
		bucket, prefix := candidates(f)
		for _, key := range scanIndex(tx.Bucket(bucket), prefix) {
			r, err := getRecord(tx, key)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !f.Match(r) {
				continue
			}
			if _, err := removeRecord(tx, key); err != nil {
				return err
			}
			if live(r, now) {
				deleted = append(deleted, key)
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("delete matching", err)
	}
	return deleted, nil
}

// List returns the live records f selects.
func (s *boltStore) List(ctx context.Context, f store.Filter) ([]*store.Record, error) {
	if !f.Valid() {
		return nil, store.ErrInvalidFilter
	}
	now := s.now()
	out := []*store.Record{}
	err := s.db.View(func(tx *bolt.Tx) error {
		bucket, prefix := candidates(f)
		for _, key := range scanIndex(tx.Bucket(bucket), prefix) {
			r, err := getRecord(tx, key)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if live(r, now) && f.Match(r) {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list", err)
	}
	return out, nil
}

// candidates names the index f narrows to; callers still check every
// record with f.Match.
func candidates(f store.Filter) (bucket, prefix []byte) {
	if f.SID != "" {
		return bucketSID, indexPrefix(f.Issuer, f.SID)
	}
	return bucketSub, indexPrefix(f.Issuer, f.Subject)
}

// Once records key for ttl and reports whether it was not recorded yet.
// Keys are stored as SHA-256 hashes.
func (s *boltStore) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("boltstore: once ttl must be positive")
	}
	now := s.now()
	h := sha256.Sum256([]byte(key))
	first := false
	err := s.db.Batch(func(tx *bolt.Tx) error {
		first = false
		once, onceExp := tx.Bucket(bucketOnce), tx.Bucket(bucketOnceExpiry)
		if v := once.Get(h[:]); v != nil {
			exp, err := decodeTimeKey(v)
			if err != nil {
				return err
			}
			if exp.After(now) {
				return nil
			}
			if err := onceExp.Delete(append(v[:len(v):len(v)], h[:]...)); err != nil {
				return err
			}
		}
		exp := timeKey(now.Add(ttl))
		if err := once.Put(h[:], exp); err != nil {
			return err
		}
		first = true
		return onceExp.Put(append(exp, h[:]...), nil)
	})
	if err != nil {
		return false, wrap("once", err)
	}
	return first, nil
}

// sweepBatch bounds how many expired entries one sweep transaction removes,
// so that the write lock it holds stays short while requests are served:
// removing a record rewrites its leaf, a few pages, so 20 of them are a
// transaction of a few milliseconds at a million sessions, where 1 000
// held the lock for a tenth of a second and more.
const sweepBatch = 20

// sweep removes the records and one-time keys that expired at or before now,
// in transactions of at most sweepBatch entries, and returns how many
// records it removed.
func (s *boltStore) sweep(now time.Time) (int, error) {
	total := 0
	for {
		n, more, err := s.sweepOnce(now)
		total += n
		if err != nil {
			return total, wrap("sweep", err)
		}
		if !more {
			return total, nil
		}
	}
}

// sweepOnce removes up to sweepBatch expired records and as many expired
// one-time keys, and reports whether more may be left.
func (s *boltStore) sweepOnce(now time.Time) (removed int, more bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		removed, more = 0, false
		limit := timeKey(now)
		var expired [][]byte
		c := tx.Bucket(bucketExpiry).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:timeKeyLen], limit) <= 0; k, _ = c.Next() {
			if len(expired) == sweepBatch {
				more = true
				break
			}
			expired = append(expired, bytes.Clone(k))
		}
		for _, k := range expired {
			r, err := removeRecord(tx, string(k[timeKeyLen:]))
			if err != nil {
				return err
			}
			if r != nil {
				removed++
			}
			// An entry left without its record must not stall the sweep.
			if err := tx.Bucket(bucketExpiry).Delete(k); err != nil {
				return err
			}
		}
		var onceKeys [][]byte
		c = tx.Bucket(bucketOnceExpiry).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:timeKeyLen], limit) <= 0; k, _ = c.Next() {
			if len(onceKeys) == sweepBatch {
				more = true
				break
			}
			onceKeys = append(onceKeys, bytes.Clone(k))
		}
		for _, k := range onceKeys {
			if err := tx.Bucket(bucketOnceExpiry).Delete(k); err != nil {
				return err
			}
			if err := tx.Bucket(bucketOnce).Delete(k[timeKeyLen:]); err != nil {
				return err
			}
		}
		return nil
	})
	return removed, more, err
}

// wrap prefixes store errors with the operation, leaving ErrNotFound
// recognisable with errors.Is and nil as nil.
func wrap(op string, err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("boltstore: %s: %w", op, err)
}

func live(r *store.Record, now time.Time) bool {
	return r != nil && r.ExpiresAt.After(now)
}

// getRecord reads the record under key; it returns ErrNotFound when there is
// none, expired or not.
func getRecord(tx *bolt.Tx, key string) (*store.Record, error) {
	v := tx.Bucket(bucketRecords).Get([]byte(key))
	if v == nil {
		return nil, store.ErrNotFound
	}
	r, err := decodeRecord(v)
	if err != nil {
		return nil, fmt.Errorf("record %q: %w", key, err)
	}
	r.Key = key
	return r, nil
}

// putRecord writes rec and its index entries. No record may be stored under
// rec.Key.
func putRecord(tx *bolt.Tx, rec *store.Record) error {
	k := []byte(rec.Key)
	if err := tx.Bucket(bucketRecords).Put(k, encodeRecord(rec)); err != nil {
		return err
	}
	if rec.SID != "" {
		if err := tx.Bucket(bucketSID).Put(append(indexPrefix(rec.Issuer, rec.SID), k...), nil); err != nil {
			return err
		}
	}
	sub := tx.Bucket(bucketSub)
	sub.FillPercent = subjectFill
	if err := sub.Put(append(indexPrefix(rec.Issuer, rec.Subject), k...), nil); err != nil {
		return err
	}
	exp := tx.Bucket(bucketExpiry)
	exp.FillPercent = expiryFill
	return exp.Put(expiryKey(rec.ExpiresAt, rec.Key), nil)
}

// removeRecord deletes the record under key with its index entries and
// returns it, or nil when there was none.
func removeRecord(tx *bolt.Tx, key string) (*store.Record, error) {
	r, err := getRecord(tx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	k := []byte(key)
	if err := tx.Bucket(bucketRecords).Delete(k); err != nil {
		return nil, err
	}
	if r.SID != "" {
		if err := tx.Bucket(bucketSID).Delete(append(indexPrefix(r.Issuer, r.SID), k...)); err != nil {
			return nil, err
		}
	}
	if err := tx.Bucket(bucketSub).Delete(append(indexPrefix(r.Issuer, r.Subject), k...)); err != nil {
		return nil, err
	}
	if err := tx.Bucket(bucketExpiry).Delete(expiryKey(r.ExpiresAt, key)); err != nil {
		return nil, err
	}
	return r, nil
}

// scanIndex returns the record keys of the index entries under prefix.
func scanIndex(b *bolt.Bucket, prefix []byte) []string {
	var keys []string
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, string(k[len(prefix):]))
	}
	return keys
}

// indexPrefix is the length-prefixed issuer and value that start every
// index key of that pair.
func indexPrefix(issuer, value string) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(issuer)+len(value))
	b = appendString(b, issuer)
	return appendString(b, value)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// timeKeyLen is the length of a timeKey.
const timeKeyLen = 12

// timeKey encodes t so that byte order is time order: seconds since the
// Unix epoch with the sign bit flipped, then nanoseconds, big-endian.
func timeKey(t time.Time) []byte {
	b := make([]byte, timeKeyLen, timeKeyLen+64)
	binary.BigEndian.PutUint64(b, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(b[8:], uint32(t.Nanosecond()))
	return b
}

func decodeTimeKey(b []byte) (time.Time, error) {
	if len(b) != timeKeyLen {
		return time.Time{}, errors.New("malformed time")
	}
	sec := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:]))), nil
}

// expiryKey is the expiry index key of the record under key.
func expiryKey(t time.Time, key string) []byte {
	return append(timeKey(t), key...)
}

// recordVersion starts every encoded record. Version 1 had no App; it is
// still read, as App "".
const (
	recordVersion   = 2
	recordVersionV1 = 1
)

// encodeRecord writes r's fields other than Key: version, length-prefixed
// issuer, subject, sid and app, LastSeen and ExpiresAt as varint seconds and
// uvarint nanoseconds, then Data to the end.
func encodeRecord(r *store.Record) []byte {
	b := make([]byte, 0, 1+len(r.Issuer)+len(r.Subject)+len(r.SID)+len(r.App)+len(r.Data)+48)
	b = append(b, recordVersion)
	b = appendString(b, r.Issuer)
	b = appendString(b, r.Subject)
	b = appendString(b, r.SID)
	b = appendString(b, r.App)
	b = appendTime(b, r.LastSeen)
	b = appendTime(b, r.ExpiresAt)
	return append(b, r.Data...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

var errMalformed = errors.New("malformed record")

// decodeRecord parses encodeRecord's output, copying out of b (bbolt values
// are only valid inside their transaction): the strings share one copy of
// the head, and Data is a copy of its own.
func decodeRecord(b []byte) (*store.Record, error) {
	if len(b) == 0 || (b[0] != recordVersion && b[0] != recordVersionV1) {
		return nil, errMalformed
	}
	d := decoder{b: b[1:], start: len(b) - 1}
	iss, sub, sid := d.field(), d.field(), d.field()
	var app [2]int
	if b[0] == recordVersion {
		app = d.field()
	}
	ls := d.time()
	exp := d.time()
	if d.err != nil {
		return nil, d.err
	}
	head := string(b[1 : len(b)-len(d.b)])
	str := func(f [2]int) string { return head[f[0]:f[1]] }
	return &store.Record{
		Issuer:    str(iss),
		Subject:   str(sub),
		SID:       str(sid),
		App:       str(app),
		LastSeen:  ls,
		ExpiresAt: exp,
		Data:      bytes.Clone(d.b),
	}, nil
}

type decoder struct {
	b     []byte
	start int // len(b) before the first read
	err   error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

// field reads a length-prefixed string and returns its bounds, as offsets
// from the start of d's input.
func (d *decoder) field() [2]int {
	n := d.uvarint()
	if d.err != nil {
		return [2]int{}
	}
	if n > uint64(len(d.b)) {
		d.err = errMalformed
		return [2]int{}
	}
	start := d.start - len(d.b)
	d.b = d.b[n:]
	return [2]int{start, start + int(n)}
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.err = errMalformed
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}
