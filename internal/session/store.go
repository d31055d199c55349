package session

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Store.Get when no live record has the key.
var ErrNotFound = errors.New("session: not found")

// Record is what a Store persists for one session. Data is opaque to the
// store (the sealed, serialised Session); the other fields are the indexes a
// store must maintain.
type Record struct {
	// Key is the one-way hash of the session cookie value.
	Key string
	// Issuer, Subject and SID index the record for back-channel logout and
	// "log out everywhere". SID may be empty.
	Issuer  string
	Subject string
	SID     string
	// LastSeen is when the session was last used; Touch updates it without
	// rewriting Data.
	LastSeen time.Time
	// ExpiresAt is when the record stops being valid; a store must not
	// return it afterwards and may delete it any time after.
	ExpiresAt time.Time
	// Data is the sealed session.
	Data []byte
}

// Store persists session records. Implementations must be safe for
// concurrent use by multiple goroutines (and, for shared backends, by
// multiple processes).
type Store interface {
	// Get returns the record stored under key. It returns ErrNotFound when
	// there is none or when it has expired.
	Get(ctx context.Context, key string) (*Record, error)
	// Create stores a new record under rec.Key and indexes it by issuer,
	// subject and sid.
	Create(ctx context.Context, rec *Record) error
	// Update replaces the record under rec.Key, keeping the indexes
	// consistent. It returns ErrNotFound, and stores nothing, when the record
	// is gone or expired: an ended session is never brought back.
	Update(ctx context.Context, rec *Record) error
	// Touch sets LastSeen and ExpiresAt of the record under key without
	// changing its Data. It returns ErrNotFound when the record is gone or
	// expired.
	Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) error
	// Delete removes the record under key. Deleting a missing record is not
	// an error.
	Delete(ctx context.Context, key string) error
	// DeleteBySID removes every record of issuer with the given OIDC sid
	// and returns the keys it removed. None is not an error.
	DeleteBySID(ctx context.Context, issuer, sid string) ([]string, error)
	// DeleteBySubject removes every record of issuer for the subject and
	// returns the keys it removed. None is not an error.
	DeleteBySubject(ctx context.Context, issuer, subject string) ([]string, error)
	// Close releases the store's resources.
	Close() error
}

// Lister is implemented by stores that can enumerate a subject's sessions.
type Lister interface {
	// ListBySubject returns the live records of issuer for the subject, in
	// no particular order. None is an empty slice and a nil error.
	ListBySubject(ctx context.Context, issuer, subject string) ([]*Record, error)
}

// OnceStore records one-time values, such as a consumed OAuth state or a
// back-channel logout token's jti, so that a replay is detected. It must be
// safe for concurrent use, and atomic across processes for shared backends.
type OnceStore interface {
	// Once records key until ttl has passed. It reports true when the key
	// was not already recorded (first use) and false on a replay.
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Pinger is implemented by stores that can report whether their backend is
// reachable, for readiness checks.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Sweeper is implemented by stores that must remove expired records
// themselves (stores with native expiry, such as Redis, need not).
type Sweeper interface {
	// Sweep removes every record that expired before now and returns how
	// many it removed.
	Sweep(ctx context.Context, now time.Time) (int, error)
}
