package redisstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store"
)

var (
	_ store.Store  = (*redisStore)(nil)
	_ store.Locker = (*redisStore)(nil)
)

// DefaultPrefix is the key prefix when Options.Prefix is empty. Its braces
// are a Redis Cluster hash tag; see the package documentation.
const DefaultPrefix = "{gatehouse}:"

// Options configure a redisStore. The zero value is ready to use.
type Options struct {
	// Prefix starts every key the store writes. Empty means DefaultPrefix.
	// On Redis Cluster it must contain a {hash tag}.
	Prefix string
	// Now is the clock that decides whether a record is live; nil means
	// time.Now. Redis removes records at their ExpiresAt by its own clock.
	Now func() time.Time
	// LocalCacheTTL, when positive, keeps records read from Redis in
	// process for up to this long, invalidated through Redis pub/sub on
	// every change by any store sharing the prefix (see localCache). Zero
	// reads Redis on every Get.
	LocalCacheTTL time.Duration
}

// redisStore is a session store on Redis. It is safe for concurrent use by
// many goroutines and many Gatehouse processes.
type redisStore struct {
	c      redis.UniversalClient
	prefix string
	now    func() time.Time
	cache  *localCache // nil: off
	lock   *locker
}

// New returns a store that uses client. The store does not own the client:
// Close leaves it open.
func New(client redis.UniversalClient, opts Options) store.Store {
	return newStore(client, opts)
}

// New returns a store that uses client. The store does not own the client:
// Close leaves it open.
func newStore(client redis.UniversalClient, opts Options) *redisStore {
	s := &redisStore{c: client, prefix: opts.Prefix, now: opts.Now}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.LocalCacheTTL > 0 {
		s.cache = newLocalCache(client, s.invalidationChannel(), opts.LocalCacheTTL)
	}
	s.lock = newLocker(client, s.prefix)
	return s
}

// Lock takes the lock named key, shared by every store on the same Redis
// and prefix: SET NX PX with a random owner, released only by its owner.
// It serialises refreshes of one session across Gatehouse replicas (RFC
// 9700 §4.14.2: with rotating refresh tokens, two replicas spending the same
// token would revoke the whole family). It blocks until it holds the lock
// or ctx ends; the lock frees itself after ttl.
func (s *redisStore) Lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	return s.lock.Lock(ctx, key, ttl)
}

// Close stops the local cache's subscription. The caller owns the client
// and closes it.
func (s *redisStore) Close() error {
	if s.cache != nil {
		s.cache.close()
	}
	return nil
}

func (s *redisStore) invalidationChannel() string { return s.prefix + "invalidate" }

// invalidate evicts keys here and tells every other store sharing the
// prefix to evict them. A publish that fails is no risk: it fails because
// Redis is unreachable, which also breaks every subscription and so turns
// every cache off.
func (s *redisStore) invalidate(ctx context.Context, keys ...string) {
	if s.cache == nil || len(keys) == 0 {
		return
	}
	s.cache.evict(keys...)
	payload, _ := json.Marshal(keys)
	s.c.Publish(context.WithoutCancel(ctx), s.invalidationChannel(), payload)
}

// Ping reports whether Redis answers.
func (s *redisStore) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

func (s *redisStore) recordKey(key string) string { return s.prefix + "s:" + key }
func (s *redisStore) subKey(h string) string      { return s.prefix + "sub:" + h }
func (s *redisStore) sidKey(h string) string      { return s.prefix + "sid:" + h }

// indexHash names the index set of an (issuer, value) pair: the SHA-256 of
// the length-prefixed strings, so no two pairs share a set and no raw
// identifier becomes a key name.
func indexHash(issuer, value string) string {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(issuer)+len(value))
	b = binary.AppendUvarint(b, uint64(len(issuer)))
	b = append(b, issuer...)
	b = binary.AppendUvarint(b, uint64(len(value)))
	b = append(b, value...)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// formatTime writes t as "seconds:nanoseconds" since the Unix epoch, exact
// for every time.Time including the zero one.
func formatTime(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + ":" + strconv.Itoa(t.Nanosecond())
}

func parseTime(s string) (time.Time, error) {
	sec, nsec, ok := strings.Cut(s, ":")
	if !ok {
		return time.Time{}, fmt.Errorf("malformed time %q", s)
	}
	a, err1 := strconv.ParseInt(sec, 10, 64)
	b, err2 := strconv.ParseInt(nsec, 10, 64)
	if err1 != nil || err2 != nil || b < 0 || b >= int64(time.Second) {
		return time.Time{}, fmt.Errorf("malformed time %q", s)
	}
	return time.Unix(a, b), nil
}

func nowMillis(t time.Time) int64 { return t.UnixMilli() }

// putArgs returns the keys and arguments of createScript and updateScript.
func (s *redisStore) putArgs(rec *store.Record) ([]string, []any) {
	ui := indexHash(rec.Issuer, rec.Subject)
	xi := ""
	keys := []string{s.recordKey(rec.Key), s.subKey(ui)}
	if rec.SID != "" {
		xi = indexHash(rec.Issuer, rec.SID)
		keys = append(keys, s.sidKey(xi))
	}
	data, keep := rec.Data, "0"
	if data == nil {
		data, keep = []byte{}, "1"
	}
	em := strconv.FormatInt(rec.ExpiresAt.UnixMilli(), 10)
	return keys, []any{
		s.prefix, rec.Key, nowMillis(s.now()),
		em, ui, xi, encodeHead(rec, em, ui, xi), data, keep,
	}
}

// recordVersion starts every record the store writes.
const recordVersion = '2'

// encodeHead writes the part of a record's value before its sealed data:
// recordVersion, then em (ExpiresAt in Unix ms, for the scripts), ui and
// xi (its index hashes), app, issuer, subject, sid, LastSeen and ExpiresAt
// (formatTime), each as its decimal length, ':' and its bytes. The sealed
// data follows to the end of the value. One string per record costs Redis
// far less than a hash with a field per value.
func encodeHead(rec *store.Record, em, ui, xi string) []byte {
	f := [...]string{em, ui, xi, rec.App, rec.Issuer, rec.Subject, rec.SID, formatTime(rec.LastSeen), formatTime(rec.ExpiresAt)}
	n := 1
	for _, v := range f {
		n += len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	for _, v := range f {
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return b
}

var errMalformed = errors.New("malformed record")

// decodeValue parses a record value written by the scripts from encodeHead
// and the sealed data. The record's strings share one copy of the head,
// and Data is the rest of v.
func decodeValue(key string, v []byte) (*store.Record, error) {
	if len(v) == 0 || v[0] != recordVersion {
		return nil, errMalformed
	}
	var at [9][2]int // each field's bounds in v
	pos := 1
	for i := range at {
		c := bytes.IndexByte(v[pos:], ':')
		if c < 0 {
			return nil, errMalformed
		}
		n, err := strconv.Atoi(string(v[pos : pos+c]))
		start := pos + c + 1
		if err != nil || n < 0 || n > len(v)-start {
			return nil, errMalformed
		}
		at[i] = [2]int{start, start + n}
		pos = start + n
	}
	head := string(v[:pos])
	field := func(i int) string { return head[at[i][0]:at[i][1]] }
	ls, err := parseTime(field(7))
	if err != nil {
		return nil, err
	}
	exp, err := parseTime(field(8))
	if err != nil {
		return nil, err
	}
	return &store.Record{
		Key:       key,
		App:       field(3),
		Issuer:    field(4),
		Subject:   field(5),
		SID:       field(6),
		LastSeen:  ls,
		ExpiresAt: exp,
		Data:      v[pos:],
	}, nil
}

// Get returns the live record stored under key.
func (s *redisStore) Get(ctx context.Context, key string) (*store.Record, error) {
	var mark uint64
	if s.cache != nil && !session.FreshRead(ctx) {
		if rec, ok := s.cache.get(key, s.now()); ok {
			return rec, nil
		}
	}
	if s.cache != nil {
		mark = s.cache.mark()
	}
	rec, err := s.get(ctx, key)
	if err == nil && s.cache != nil {
		s.cache.put(key, rec, mark, s.now())
	}
	return rec, err
}

// get reads a record with one GET, or with HMGET when it is still a hash
// (written by an earlier version of the store).
func (s *redisStore) get(ctx context.Context, key string) (*store.Record, error) {
	v, err := s.c.Get(ctx, s.recordKey(key)).Bytes()
	var rec *store.Record
	switch {
	case errors.Is(err, redis.Nil):
		return nil, store.ErrNotFound
	case err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE"):
		rec, err = s.getHash(ctx, key)
	case err != nil:
		return nil, fmt.Errorf("redisstore: get: %w", err)
	default:
		rec, err = decodeValue(key, v)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: get: %w", err)
	}
	if !rec.ExpiresAt.After(s.now()) {
		return nil, store.ErrNotFound
	}
	return rec, nil
}

func (s *redisStore) getHash(ctx context.Context, key string) (*store.Record, error) {
	vals, err := s.c.HMGet(ctx, s.recordKey(key), "iss", "sub", "sid", "ls", "exp", "d", "app").Result()
	if err != nil {
		return nil, err
	}
	if vals[4] == nil {
		return nil, store.ErrNotFound
	}
	strs, err := fieldStrings(vals)
	if err != nil {
		return nil, err
	}
	return decodeRecord(key, strs, []byte(strs[5]))
}

// fieldStrings turns the reply for the fields iss, sub, sid, ls, exp, d, app
// into strings. A record written before App existed has no app field.
func fieldStrings(vals []any) ([]string, error) {
	strs := make([]string, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok && !(i == 6 && v == nil) {
			return nil, fmt.Errorf("record field %d is missing", i)
		}
		strs[i] = str
	}
	return strs, nil
}

// decodeRecord builds a record from its key, the fields in the order of
// fieldStrings (iss, sub, sid, ls, exp, d, app; d is not read) and its
// sealed data.
func decodeRecord(key string, f []string, data []byte) (*store.Record, error) {
	ls, err := parseTime(f[3])
	if err != nil {
		return nil, err
	}
	exp, err := parseTime(f[4])
	if err != nil {
		return nil, err
	}
	return &store.Record{
		Key:       key,
		App:       f[6],
		Issuer:    f[0],
		Subject:   f[1],
		SID:       f[2],
		LastSeen:  ls,
		ExpiresAt: exp,
		Data:      data,
	}, nil
}

// Create stores rec, replacing any record under the same key.
func (s *redisStore) Create(ctx context.Context, rec *store.Record) error {
	keys, args := s.putArgs(rec)
	if err := createScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisstore: create: %w", err)
	}
	return nil
}

// Update replaces the live record under rec.Key.
func (s *redisStore) Update(ctx context.Context, rec *store.Record) error {
	keys, args := s.putArgs(rec)
	n, err := updateScript.Run(ctx, s.c, keys, args...).Int()
	s.invalidate(ctx, rec.Key)
	if err != nil {
		return fmt.Errorf("redisstore: update: %w", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Delete removes the record under key, if any.
func (s *redisStore) Delete(ctx context.Context, key string) error {
	err := deleteScript.Run(ctx, s.c, []string{s.recordKey(key)}, s.prefix, key).Err()
	s.invalidate(ctx, key)
	if err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	return nil
}

// indexOf names the index set f narrows to: the sid set when f has a sid,
// else the subject set.
func (s *redisStore) indexOf(f store.Filter) (set, field, hash string) {
	if f.SID != "" {
		h := indexHash(f.Issuer, f.SID)
		return s.sidKey(h), "xi", h
	}
	h := indexHash(f.Issuer, f.Subject)
	return s.subKey(h), "ui", h
}

// DeleteMatching removes the records f selects and returns the keys of
// those that were live. It is one script, atomic on the server.
func (s *redisStore) DeleteMatching(ctx context.Context, f store.Filter) ([]string, error) {
	if !f.Valid() {
		return nil, store.ErrInvalidFilter
	}
	set, field, h := s.indexOf(f)
	keys, err := deleteMatchingScript.Run(ctx, s.c, []string{set}, s.prefix, nowMillis(s.now()), field, h, f.App, f.Subject, f.SID).StringSlice()
	s.invalidate(ctx, keys...)
	if err != nil {
		return nil, fmt.Errorf("redisstore: delete matching: %w", err)
	}
	return keys, nil
}

// List returns the live records f selects.
func (s *redisStore) List(ctx context.Context, f store.Filter) ([]*store.Record, error) {
	if !f.Valid() {
		return nil, store.ErrInvalidFilter
	}
	set, field, h := s.indexOf(f)
	res, err := listScript.Run(ctx, s.c, []string{set}, s.prefix, nowMillis(s.now()), field, h).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list: %w", err)
	}
	now := s.now()
	out := make([]*store.Record, 0, len(res))
	for _, item := range res {
		fields, ok := item.([]any)
		if !ok || len(fields) != 8 {
			return nil, errors.New("redisstore: list: malformed script reply")
		}
		strs, err := fieldStrings(fields[1:])
		key, ok := fields[0].(string)
		if err != nil || !ok {
			return nil, errors.New("redisstore: list: record field missing")
		}
		rec, err := decodeRecord(key, strs, []byte(strs[5]))
		if err != nil {
			return nil, fmt.Errorf("redisstore: list: %w", err)
		}
		if rec.ExpiresAt.After(now) && f.Match(rec) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// Once records key for ttl (rounded up to a millisecond) and reports
// whether it was not recorded yet. It is one SET NX PX, atomic across
// processes; the ttl runs on the Redis server's clock. Keys are stored as
// SHA-256 hashes.
func (s *redisStore) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("redisstore: once ttl must be positive")
	}
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	sum := sha256.Sum256([]byte(key))
	ok, err := s.c.SetNX(ctx, s.prefix+"o:"+base64.RawURLEncoding.EncodeToString(sum[:]), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: once: %w", err)
	}
	return ok, nil
}
