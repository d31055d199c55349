// Package store is the contract between Gatehouse and a session store: one
// small interface, the record it keeps, and the errors it returns. Each
// backend lives in a package of its own below this one (memstore,
// boltstore, redisstore, pgstore), and storetest is the conformance suite
// every backend passes.
//
// A store never sees a token or a cookie value: Key is a one-way hash of
// the cookie, and Data is the sealed session, opaque to the store.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get and Update when no live record has the key.
var ErrNotFound = errors.New("store: not found")

// Record is what a Store persists for one session. Data is opaque to the
// store; the other fields are what a store indexes and filters on.
type Record struct {
	// Key is the one-way hash of the session cookie value.
	Key string
	// App names the application the session belongs to ("" for the
	// single-application configuration).
	App string
	// Issuer, Subject and SID index the record for back-channel logout and
	// "log out everywhere". SID may be empty.
	Issuer  string
	Subject string
	SID     string
	// LastSeen is when the session was last used.
	LastSeen time.Time
	// ExpiresAt is when the record stops being valid: a store never returns
	// it afterwards, and removes it by itself some time after.
	ExpiresAt time.Time
	// Data is the sealed session.
	Data []byte
}

// Filter selects the records of one issuer by subject or by OpenID
// Connect session id. Issuer and one of Subject and SID must be set; when
// both are, a record must match both. An empty App matches every
// application's records.
type Filter struct {
	App     string
	Issuer  string
	Subject string
	SID     string
}

// Valid reports whether f selects by subject or sid within an issuer.
func (f Filter) Valid() bool {
	return f.Issuer != "" && (f.Subject != "" || f.SID != "")
}

// Match reports whether rec is selected by f.
func (f Filter) Match(rec *Record) bool {
	return f.Valid() && rec.Issuer == f.Issuer &&
		(f.App == "" || rec.App == f.App) &&
		(f.Subject == "" || rec.Subject == f.Subject) &&
		(f.SID == "" || rec.SID == f.SID)
}

// Store persists session records and one-time values. Implementations are
// safe for concurrent use by multiple goroutines and, for shared backends,
// by multiple processes. A store removes expired records by itself; Close
// stops that work. Every method but Close honours ctx's deadline.
type Store interface {
	// Get returns the live record stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) (*Record, error)
	// Create stores a new record under rec.Key.
	Create(ctx context.Context, rec *Record) error
	// Update replaces the live record under rec.Key. When it is gone or
	// expired, Update stores nothing and returns ErrNotFound: an ended
	// session is never brought back. A nil rec.Data keeps the stored Data
	// and moves only the other fields, in one atomic step: a session read
	// and written back to slide its deadline never puts back the tokens a
	// refresh saved in between.
	Update(ctx context.Context, rec *Record) error
	// Delete removes the record under key. A missing record is no error.
	Delete(ctx context.Context, key string) error
	// DeleteMatching removes every record f selects and returns their
	// keys. None is an empty result and no error; an invalid f is an error.
	DeleteMatching(ctx context.Context, f Filter) ([]string, error)
	// List returns the live records f selects, in no particular order.
	// None is an empty slice and no error; an invalid f is an error.
	List(ctx context.Context, f Filter) ([]*Record, error)
	// Once records key for ttl. It reports true on first use and false on a
	// replay within ttl; it is atomic across processes for shared backends.
	// Gatehouse records consumed login states and logout token ids here.
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Ping reports whether the backend answers, for readiness checks.
	Ping(ctx context.Context) error
	// Close stops the store's background work and releases its resources.
	Close() error
}

// Locker is implemented by stores shared between processes. Gatehouse uses
// it to refresh a session's tokens once across replicas: Lock blocks until
// it holds the lock named key (or ctx ends), and the lock frees itself
// after ttl if unlock is never called.
type Locker interface {
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error)
}

// ErrInvalidFilter is returned by DeleteMatching and List for a Filter that
// names no issuer, or neither a subject nor a sid.
var ErrInvalidFilter = errors.New("store: filter needs an issuer and a subject or sid")
