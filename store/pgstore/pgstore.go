package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-bff/gatehouse/store"
)

var (
	_ store.Store  = (*pgStore)(nil)
	_ store.Locker = (*pgStore)(nil)
)

// Defaults for the zero fields of Options.
const (
	defaultPrefix        = "gatehouse_"
	defaultTimeout       = 2 * time.Second
	defaultSweepInterval = time.Minute
	// sweepBatch is how many expired rows one DELETE removes: small
	// enough that each statement holds its row locks only briefly.
	sweepBatch = 1000
	// minPoolConns is the pool size Open asks for when the DSN names
	// none: locks pin a connection each and may use half of the pool.
	minPoolConns = 10
)

// prefixRE keeps table and index names plain identifiers within
// PostgreSQL's 63-byte limit (the longest suffix is 23 bytes).
var prefixRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Options configure a pgStore. The zero value is ready to use.
type Options struct {
	// TablePrefix starts the name of every table and index the store
	// creates, so several deployments can share one database. Lower-case
	// letters, digits and underscores, at most 40. Default "gatehouse_".
	TablePrefix string
	// Timeout bounds every database call. Default 2s.
	Timeout time.Duration
	// SweepInterval is how often a background goroutine deletes expired
	// sessions and one-time keys. Zero means one minute; a negative value
	// starts no goroutine (expired rows then stay, invisible).
	SweepInterval time.Duration
	// Now is the clock that decides expiry; nil means time.Now.
	Now func() time.Time
	// Logger receives sweep failures; nil discards them.
	Logger *slog.Logger
}

// pgStore is a session store on a PostgreSQL database. It is safe for
// concurrent use, and by several processes on the same tables.
type pgStore struct {
	pool    *pgxpool.Pool
	owned   bool
	now     func() time.Time
	log     *slog.Logger
	timeout time.Duration
	prefix  string
	// ns is the schema and prefix, naming the store's advisory locks.
	ns    string
	batch int

	// Table names, quoted.
	sessions, once, schema string
	// getSQL is Get's query, built once: it is on every request's path.
	getSQL string

	// locks bounds the connections that hold or wait for a lock.
	locks chan struct{}
	// serverExpiryOnly turns off the client-side release of a lock at its
	// ttl, so tests can prove the server-side one.
	serverExpiryOnly bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// errDSN never quotes the connection string, which may hold a password.
var errDSN = errors.New("pgstore: the dsn is not a PostgreSQL connection string (postgres://user@host:5432/db?sslmode=verify-full, or key=value pairs)")

// Open connects to the database that dsn names (a postgres:// URL or
// key=value pairs, as libpq accepts them), creates or migrates the tables,
// and starts the sweeper. The store owns its connection pool and closes it
// on Close. When dsn sets no pool_max_conns, the pool holds at least 10
// connections.
func Open(ctx context.Context, dsn string, opts Options) (store.Store, error) {
	s, err := open(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Open connects to the database that dsn names (a postgres:// URL or
// key=value pairs, as libpq accepts them), creates or migrates the tables,
// and starts the sweeper. The store owns its connection pool and closes it
// on Close. When dsn sets no pool_max_conns, the pool holds at least 10
// connections.
func open(ctx context.Context, dsn string, opts Options) (*pgStore, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errDSN
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, minPoolConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s, err := newStore(ctx, pool, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// New returns a store on pool, after creating or migrating its tables,
// and starts the sweeper. The pool needs at least 2 connections, as a lock
// holds one. The caller keeps ownership of pool: Close leaves it open.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (store.Store, error) {
	s, err := newStore(ctx, pool, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// New returns a store on pool, after creating or migrating its tables,
// and starts the sweeper. The pool needs at least 2 connections, as a lock
// holds one. The caller keeps ownership of pool: Close leaves it open.
func newStore(ctx context.Context, pool *pgxpool.Pool, opts Options) (*pgStore, error) {
	prefix := opts.TablePrefix
	if prefix == "" {
		prefix = defaultPrefix
	}
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("pgstore: table prefix %q must be lower-case letters, digits and underscores, at most 40", prefix)
	}
	if pool.Config().MaxConns < 2 {
		// A refresh holds one connection for its lock and needs another
		// to save the session.
		return nil, errors.New("pgstore: the pool needs at least 2 connections")
	}
	if opts.Timeout < 0 {
		return nil, errors.New("pgstore: timeout must not be negative")
	}
	s := &pgStore{
		pool:     pool,
		now:      opts.Now,
		log:      opts.Logger,
		timeout:  opts.Timeout,
		prefix:   prefix,
		batch:    sweepBatch,
		sessions: pgx.Identifier{prefix + "sessions"}.Sanitize(),
		once:     pgx.Identifier{prefix + "once"}.Sanitize(),
		schema:   pgx.Identifier{prefix + "schema"}.Sanitize(),
		locks:    make(chan struct{}, max(1, pool.Config().MaxConns/2)),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.getSQL = "SELECT app, issuer, subject, sid, last_seen, expires_at, data FROM " + s.sessions + " WHERE key = $1 AND expires_at > $2"
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = defaultSweepInterval
	}
	if interval < 0 {
		close(s.done)
		return s, nil
	}
	go s.sweepLoop(interval)
	return s, nil
}

// Close stops the sweeper and, for a store from Open, closes the pool
// (which waits for held locks to be released). It may be called more than
// once.
func (s *pgStore) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if s.owned {
			s.pool.Close()
		}
	})
	return nil
}

// bound returns ctx limited by the store's timeout.
func (s *pgStore) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// lockID names an advisory lock: the first 8 bytes of a SHA-256 over the
// purpose, the store's schema and prefix and the name, so other stores in
// the database, and other users of advisory locks, do not collide in
// practice.
func lockID(purpose, ns, name string) int64 {
	h := sha256.New()
	for _, v := range []string{"gatehouse", purpose, ns, name} {
		binary.Write(h, binary.BigEndian, uint64(len(v)))
		h.Write([]byte(v))
	}
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

const recordColumns = "key, app, issuer, subject, sid, last_seen, expires_at, data"

// bytesOf is the bytea a string field is stored as; never NULL.
func bytesOf(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

func recordArgs(rec *store.Record) []any {
	data := rec.Data
	if data == nil {
		data = []byte{}
	}
	return []any{bytesOf(rec.Key), bytesOf(rec.App), bytesOf(rec.Issuer), bytesOf(rec.Subject),
		bytesOf(rec.SID), rec.LastSeen, rec.ExpiresAt, data}
}

func scanRecord(row pgx.Row) (*store.Record, error) {
	var key, app, iss, sub, sid, data []byte
	r := &store.Record{}
	if err := row.Scan(&key, &app, &iss, &sub, &sid, &r.LastSeen, &r.ExpiresAt, &data); err != nil {
		return nil, err
	}
	r.Key, r.App, r.Issuer, r.Subject, r.SID = string(key), string(app), string(iss), string(sub), string(sid)
	if data == nil {
		data = []byte{}
	}
	r.Data = data
	return r, nil
}

// Get returns the live record stored under key, or store.ErrNotFound.
func (s *pgStore) Get(ctx context.Context, key string) (*store.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	r := &store.Record{Key: key}
	var app, iss, sub, sid []byte
	err := s.pool.QueryRow(ctx, s.getSQL, bytesOf(key), s.now()).
		Scan(&app, &iss, &sub, &sid, &r.LastSeen, &r.ExpiresAt, &r.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: get: %w", err)
	}
	r.App, r.Issuer, r.Subject, r.SID = string(app), string(iss), string(sub), string(sid)
	if r.Data == nil {
		r.Data = []byte{}
	}
	return r, nil
}

// Create stores rec, replacing any record under the same key, as the
// other stores do: the key is the hash of a fresh random cookie, so a
// collision is a retry of the same login.
func (s *pgStore) Create(ctx context.Context, rec *store.Record) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx,
		"INSERT INTO "+s.sessions+" ("+recordColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"+
			" ON CONFLICT (key) DO UPDATE SET app = EXCLUDED.app, issuer = EXCLUDED.issuer,"+
			" subject = EXCLUDED.subject, sid = EXCLUDED.sid, last_seen = EXCLUDED.last_seen,"+
			" expires_at = EXCLUDED.expires_at, data = EXCLUDED.data",
		recordArgs(rec)...)
	if err != nil {
		return fmt.Errorf("pgstore: create: %w", err)
	}
	return nil
}

// Update replaces the live record under rec.Key. When it is gone or
// expired, Update stores nothing and returns store.ErrNotFound. The check
// and the write are one statement, so a concurrent Delete always wins.
func (s *pgStore) Update(ctx context.Context, rec *store.Record) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	args := append(recordArgs(rec), s.now())
	if rec.Data == nil {
		// Keep the stored data: $8 is NULL, and COALESCE keeps the column.
		args[7] = nil
	}
	tag, err := s.pool.Exec(ctx,
		"UPDATE "+s.sessions+" SET app = $2, issuer = $3, subject = $4, sid = $5,"+
			" last_seen = $6, expires_at = $7, data = COALESCE($8::bytea, data) WHERE key = $1 AND expires_at > $9",
		args...)
	if err != nil {
		return fmt.Errorf("pgstore: update: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Delete removes the record under key. A missing record is no error.
func (s *pgStore) Delete(ctx context.Context, key string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, "DELETE FROM "+s.sessions+" WHERE key = $1", bytesOf(key)); err != nil {
		return fmt.Errorf("pgstore: delete: %w", err)
	}
	return nil
}

// where returns the condition and arguments that select f's records, with
// the first placeholder numbered first. Only fixed text enters the SQL.
func where(f store.Filter, first int) (string, []any) {
	cond := []string{fmt.Sprintf("issuer = $%d", first)}
	args := []any{bytesOf(f.Issuer)}
	for _, c := range []struct{ col, val string }{{"app", f.App}, {"subject", f.Subject}, {"sid", f.SID}} {
		if c.val != "" {
			args = append(args, bytesOf(c.val))
			cond = append(cond, fmt.Sprintf("%s = $%d", c.col, first+len(args)-1))
		}
	}
	return strings.Join(cond, " AND "), args
}

// DeleteMatching removes every record f selects, expired ones included,
// and returns the keys of those that were live.
func (s *pgStore) DeleteMatching(ctx context.Context, f store.Filter) ([]string, error) {
	if !f.Valid() {
		return nil, store.ErrInvalidFilter
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cond, args := where(f, 2)
	rows, err := s.pool.Query(ctx,
		"DELETE FROM "+s.sessions+" WHERE "+cond+" RETURNING key, expires_at > $1",
		append([]any{s.now()}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: delete matching: %w", err)
	}
	keys := []string{}
	var key []byte
	var live bool
	_, err = pgx.ForEachRow(rows, []any{&key, &live}, func() error {
		if live {
			keys = append(keys, string(key))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: delete matching: %w", err)
	}
	return keys, nil
}

// List returns the live records f selects, in no particular order.
func (s *pgStore) List(ctx context.Context, f store.Filter) ([]*store.Record, error) {
	if !f.Valid() {
		return nil, store.ErrInvalidFilter
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cond, args := where(f, 2)
	rows, err := s.pool.Query(ctx,
		"SELECT "+recordColumns+" FROM "+s.sessions+" WHERE "+cond+" AND expires_at > $1",
		append([]any{s.now()}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Record, error) {
		return scanRecord(row)
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	if out == nil {
		out = []*store.Record{}
	}
	return out, nil
}

// Once records key for ttl. It reports true on first use and false on a
// replay within ttl, atomically across every store on the same tables: the
// insert and the expiry check are one statement.
func (s *pgStore) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("pgstore: once ttl must be positive")
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now()
	h := sha256.Sum256([]byte(key))
	tag, err := s.pool.Exec(ctx,
		"INSERT INTO "+s.once+" AS o (key, expires_at) VALUES ($1, $2)"+
			" ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE o.expires_at <= $3",
		h[:], now.Add(ttl), now)
	if err != nil {
		return false, fmt.Errorf("pgstore: once: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Ping reports whether the database answers, for readiness checks.
func (s *pgStore) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	return nil
}
