package redisstore

import (
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
)

var (
	_ session.Store     = (*Store)(nil)
	_ session.Lister    = (*Store)(nil)
	_ session.OnceStore = (*Store)(nil)
	_ session.Pinger    = (*Store)(nil)
)

// DefaultPrefix is the key prefix when Options.Prefix is empty. Its braces
// are a Redis Cluster hash tag; see the package documentation.
const DefaultPrefix = "{gatehouse}:"

// Options configure a Store. The zero value is ready to use.
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

// Store is a session store on Redis. It is safe for concurrent use by
// many goroutines and many Gatehouse processes.
type Store struct {
	c      redis.UniversalClient
	prefix string
	now    func() time.Time
	cache  *localCache // nil: off
}

// New returns a store that uses client. The store does not own the client:
// Close leaves it open.
func New(client redis.UniversalClient, opts Options) *Store {
	s := &Store{c: client, prefix: opts.Prefix, now: opts.Now}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.LocalCacheTTL > 0 {
		s.cache = newLocalCache(client, s.invalidationChannel(), opts.LocalCacheTTL)
	}
	return s
}

// Close stops the local cache's subscription. The caller owns the client
// and closes it.
func (s *Store) Close() error {
	if s.cache != nil {
		s.cache.close()
	}
	return nil
}

func (s *Store) invalidationChannel() string { return s.prefix + "invalidate" }

// invalidate evicts keys here and tells every other store sharing the
// prefix to evict them. A publish that fails is no risk: it fails because
// Redis is unreachable, which also breaks every subscription and so turns
// every cache off.
func (s *Store) invalidate(ctx context.Context, keys ...string) {
	if s.cache == nil || len(keys) == 0 {
		return
	}
	s.cache.evict(keys...)
	payload, _ := json.Marshal(keys)
	s.c.Publish(context.WithoutCancel(ctx), s.invalidationChannel(), payload)
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

func (s *Store) recordKey(key string) string { return s.prefix + "s:" + key }
func (s *Store) subKey(h string) string      { return s.prefix + "sub:" + h }
func (s *Store) sidKey(h string) string      { return s.prefix + "sid:" + h }

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
func (s *Store) putArgs(rec *session.Record) ([]string, []any) {
	ui := indexHash(rec.Issuer, rec.Subject)
	xi := ""
	keys := []string{s.recordKey(rec.Key), s.subKey(ui)}
	if rec.SID != "" {
		xi = indexHash(rec.Issuer, rec.SID)
		keys = append(keys, s.sidKey(xi))
	}
	data := rec.Data
	if data == nil {
		data = []byte{}
	}
	return keys, []any{
		s.prefix, rec.Key, nowMillis(s.now()),
		rec.Issuer, rec.Subject, rec.SID,
		formatTime(rec.LastSeen), formatTime(rec.ExpiresAt), rec.ExpiresAt.UnixMilli(),
		data, ui, xi,
	}
}

// Get returns the live record stored under key.
func (s *Store) Get(ctx context.Context, key string) (*session.Record, error) {
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

func (s *Store) get(ctx context.Context, key string) (*session.Record, error) {
	vals, err := s.c.HMGet(ctx, s.recordKey(key), "iss", "sub", "sid", "ls", "exp", "d").Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: get: %w", err)
	}
	if vals[4] == nil {
		return nil, session.ErrNotFound
	}
	strs := make([]string, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("redisstore: get: record field %d is missing", i)
		}
		strs[i] = str
	}
	rec, err := decodeRecord(key, strs)
	if err != nil {
		return nil, fmt.Errorf("redisstore: get: %w", err)
	}
	if !rec.ExpiresAt.After(s.now()) {
		return nil, session.ErrNotFound
	}
	return rec, nil
}

// decodeRecord builds a record from its key and the fields iss, sub, sid,
// ls, exp, d.
func decodeRecord(key string, f []string) (*session.Record, error) {
	ls, err := parseTime(f[3])
	if err != nil {
		return nil, err
	}
	exp, err := parseTime(f[4])
	if err != nil {
		return nil, err
	}
	return &session.Record{
		Key:       key,
		Issuer:    f[0],
		Subject:   f[1],
		SID:       f[2],
		LastSeen:  ls,
		ExpiresAt: exp,
		Data:      []byte(f[5]),
	}, nil
}

// Create stores rec, replacing any record under the same key.
func (s *Store) Create(ctx context.Context, rec *session.Record) error {
	keys, args := s.putArgs(rec)
	if err := createScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisstore: create: %w", err)
	}
	return nil
}

// Update replaces the live record under rec.Key.
func (s *Store) Update(ctx context.Context, rec *session.Record) error {
	keys, args := s.putArgs(rec)
	n, err := updateScript.Run(ctx, s.c, keys, args...).Int()
	s.invalidate(ctx, rec.Key)
	if err != nil {
		return fmt.Errorf("redisstore: update: %w", err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// Touch moves the LastSeen and ExpiresAt of the live record under key.
func (s *Store) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) error {
	n, err := touchScript.Run(ctx, s.c, []string{s.recordKey(key)},
		s.prefix, key, nowMillis(s.now()), formatTime(lastSeen), formatTime(expiresAt), expiresAt.UnixMilli()).Int()
	s.invalidate(ctx, key)
	if err != nil {
		return fmt.Errorf("redisstore: touch: %w", err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// Delete removes the record under key, if any.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := deleteScript.Run(ctx, s.c, []string{s.recordKey(key)}, s.prefix, key).Err()
	s.invalidate(ctx, key)
	if err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	return nil
}

// DeleteBySID removes the records of issuer with the given sid and returns
// the keys of those that were live. An empty sid matches nothing.
func (s *Store) DeleteBySID(ctx context.Context, issuer, sid string) ([]string, error) {
	if sid == "" {
		return []string{}, nil
	}
	h := indexHash(issuer, sid)
	keys, err := deleteIndexedScript.Run(ctx, s.c, []string{s.sidKey(h)}, s.prefix, nowMillis(s.now()), "xi", h).StringSlice()
	s.invalidate(ctx, keys...)
	if err != nil {
		return nil, fmt.Errorf("redisstore: delete by sid: %w", err)
	}
	return keys, nil
}

// DeleteBySubject removes the records of issuer for subject and returns the
// keys of those that were live.
func (s *Store) DeleteBySubject(ctx context.Context, issuer, subject string) ([]string, error) {
	h := indexHash(issuer, subject)
	keys, err := deleteIndexedScript.Run(ctx, s.c, []string{s.subKey(h)}, s.prefix, nowMillis(s.now()), "ui", h).StringSlice()
	s.invalidate(ctx, keys...)
	if err != nil {
		return nil, fmt.Errorf("redisstore: delete by subject: %w", err)
	}
	return keys, nil
}

// ListBySubject returns the live records of issuer for subject.
func (s *Store) ListBySubject(ctx context.Context, issuer, subject string) ([]*session.Record, error) {
	h := indexHash(issuer, subject)
	res, err := listScript.Run(ctx, s.c, []string{s.subKey(h)}, s.prefix, nowMillis(s.now()), h).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list: %w", err)
	}
	now := s.now()
	out := make([]*session.Record, 0, len(res))
	for _, item := range res {
		fields, ok := item.([]any)
		if !ok || len(fields) != 7 {
			return nil, errors.New("redisstore: list: malformed script reply")
		}
		strs := make([]string, len(fields))
		for i, f := range fields {
			if strs[i], ok = f.(string); !ok {
				return nil, errors.New("redisstore: list: record field missing")
			}
		}
		rec, err := decodeRecord(strs[0], strs[1:])
		if err != nil {
			return nil, fmt.Errorf("redisstore: list: %w", err)
		}
		if rec.ExpiresAt.After(now) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// Once records key for ttl (rounded up to a millisecond) and reports
// whether it was not recorded yet. It is one SET NX PX, atomic across
// processes; the ttl runs on the Redis server's clock. Keys are stored as
// SHA-256 hashes.
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
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
