package session

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/store"
)

// CookiePrefix is the prefix every Gatehouse cookie name carries. Browsers
// accept a __Host- cookie only when it is Secure, has Path=/ and no Domain,
// so it cannot be set or shadowed by a sibling subdomain (RFC 6265bis §4.1.3.2).
const CookiePrefix = "__Host-"

// idBytes is the entropy of a session id: 256 bits from crypto/rand.
const idBytes = 32

// Errors returned by Manager.Load.
var (
	// ErrNoSession means the request carries no session cookie, or one that
	// names no live session.
	ErrNoSession = errors.New("session: no session")
	// ErrExpired means the session existed but passed its idle or absolute
	// deadline; it has been deleted.
	ErrExpired = errors.New("session: expired")
)

// Options configure a Manager.
type Options struct {
	// Store persists records. Required.
	Store store.Store
	// App names the application whose sessions this manager keeps ("" for
	// the single-application configuration). A record of another app is no
	// session here, even under the same cookie name.
	App string
	// Ring seals session data. Required.
	Ring *seal.Ring
	// CookieName must start with "__Host-".
	CookieName string
	// SameSite is the cookie's SameSite mode: http.SameSiteLaxMode or
	// http.SameSiteStrictMode.
	SameSite http.SameSite
	// IdleTimeout ends a session that has not been used for this long.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after sign-in, however used.
	AbsoluteTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxPerUser, when positive, caps the live sessions of one user
	// (issuer and subject) in this app: Create ends the least recently
	// used ones beyond it, with reason "max_per_user".
	MaxPerUser int
	// OnEnd, when set, is called after sessions have been ended, with their
	// store keys and the reason ("logout", "idle", "absolute",
	// "backchannel", ...). Every end of a session passes here.
	OnEnd func(ctx context.Context, keys []string, reason string)
	// Toucher, when set, writes slides in the background (see Toucher);
	// nil writes them on the request path.
	Toucher *Toucher
}

// Manager binds browser cookies to stored sessions. It is safe for
// concurrent use.
type Manager struct {
	opts Options

	// decoded remembers the last decoded form of each record by key, so
	// that a record read again unchanged is not unsealed and parsed again.
	// The store is still asked on every load, so an ended session is never
	// served from here; an entry is used only when the stored ciphertext is
	// byte for byte the one it was decoded from.
	decoded     sync.Map // key -> *decodedRecord
	decodedSize atomic.Int64
}

type decodedRecord struct {
	data []byte
	s    Session
}

// maxDecoded bounds the decode cache; past it the cache starts over.
const maxDecoded = 100_000

// NewManager checks opts and returns a Manager.
func NewManager(opts Options) (*Manager, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("session: a store is required")
	case opts.Ring == nil:
		return nil, errors.New("session: a key ring is required")
	case !strings.HasPrefix(opts.CookieName, CookiePrefix) || len(opts.CookieName) == len(CookiePrefix):
		return nil, fmt.Errorf("session: cookie name %q must start with %q", opts.CookieName, CookiePrefix)
	case opts.IdleTimeout <= 0 || opts.AbsoluteTimeout <= 0:
		return nil, errors.New("session: idle and absolute timeouts must be positive")
	}
	if opts.SameSite != http.SameSiteStrictMode {
		opts.SameSite = http.SameSiteLaxMode
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{opts: opts}, nil
}

// CookieName returns the name of the session cookie.
func (m *Manager) CookieName() string { return m.opts.CookieName }

// IdleTimeout returns the configured idle timeout.
func (m *Manager) IdleTimeout() time.Duration { return m.opts.IdleTimeout }

// Now returns the manager's clock reading.
func (m *Manager) Now() time.Time { return m.opts.Now() }

// KeyOf returns the store key for a cookie value: its SHA-256 hash.
func KeyOf(cookieValue string) string {
	// Cookie values Load accepts fit the buffer on the stack; only the
	// key itself is allocated.
	var in [128]byte
	var sum [sha256.Size]byte
	if len(cookieValue) <= len(in) {
		sum = sha256.Sum256(append(in[:0], cookieValue...))
	} else {
		sum = sha256.Sum256([]byte(cookieValue))
	}
	var out [43]byte // base64.RawURLEncoding.EncodedLen(sha256.Size)
	base64.RawURLEncoding.Encode(out[:], sum[:])
	return string(out[:])
}

// NewID returns a new random identifier of 256 bits, base64url encoded.
func NewID() string {
	b := make([]byte, idBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create stores s as a new session under a fresh random id and returns the
// cookie value that names it. Create never reuses an id the browser sent, so
// a planted pre-login cookie cannot fix the session (OWASP ASVS V3.2.1).
// With MaxPerUser set, it first ends the user's least recently used
// sessions that would exceed the cap, so one account cannot fill the store.
func (m *Manager) Create(ctx context.Context, s *Session) (string, error) {
	if err := m.makeRoom(ctx, s.Issuer, s.Subject); err != nil {
		return "", err
	}
	now := m.opts.Now()
	id := NewID()
	s.Key = KeyOf(id)
	if s.Handle == "" {
		s.Handle = NewID()[:22]
	}
	s.CreatedAt = now
	s.LastSeen = now
	s.AbsoluteExpiry = now.Add(m.opts.AbsoluteTimeout)
	rec, err := m.record(s)
	if err != nil {
		return "", err
	}
	if err := m.opts.Store.Create(ctx, rec); err != nil {
		return "", fmt.Errorf("session: create: %w", err)
	}
	return id, nil
}

// makeRoom ends the user's least recently used sessions (by LastSeen) until
// one more fits under MaxPerUser. A store that cannot list them fails the
// creation: the cap is not skipped.
func (m *Manager) makeRoom(ctx context.Context, issuer, subject string) error {
	if m.opts.MaxPerUser <= 0 || issuer == "" || subject == "" {
		return nil
	}
	live, err := m.List(ctx, store.Filter{Issuer: issuer, Subject: subject})
	if err != nil {
		return err
	}
	extra := len(live) - m.opts.MaxPerUser + 1
	if extra <= 0 {
		return nil
	}
	slices.SortFunc(live, func(a, b *Session) int {
		return cmp.Or(a.LastSeen.Compare(b.LastSeen), a.CreatedAt.Compare(b.CreatedAt))
	})
	for _, old := range live[:extra] {
		if err := m.EndKey(ctx, old.Key, "max_per_user"); err != nil {
			return err
		}
	}
	return nil
}

// Save writes back a changed session (new tokens, for example). It returns
// ErrNotFound when the session has ended meanwhile.
func (m *Manager) Save(ctx context.Context, s *Session) error {
	rec, err := m.record(s)
	if err != nil {
		return err
	}
	return m.opts.Store.Update(ctx, rec)
}

func (m *Manager) record(s *Session) (*store.Record, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("session: encode: %w", err)
	}
	return &store.Record{
		Key:       s.Key,
		App:       m.opts.App,
		Issuer:    s.Issuer,
		Subject:   s.Subject,
		SID:       s.SID,
		LastSeen:  s.LastSeen,
		ExpiresAt: s.ExpiresAt(m.opts.IdleTimeout),
		Data:      m.opts.Ring.Seal(plain, []byte(s.Key)),
	}, nil
}

// Open turns a stored record back into a session. The returned session's
// Claims map is shared with other loads of the same record: treat it as
// read-only.
func (m *Manager) Open(rec *store.Record) (*Session, error) {
	if v, ok := m.decoded.Load(rec.Key); ok {
		if d := v.(*decodedRecord); bytes.Equal(d.data, rec.Data) {
			s := d.s
			s.LastSeen = rec.LastSeen
			return &s, nil
		}
	}
	plain, err := m.opts.Ring.Open(rec.Data, []byte(rec.Key))
	if err != nil {
		return nil, fmt.Errorf("session: open record: %w", err)
	}
	s := new(Session)
	if err := json.Unmarshal(plain, s); err != nil {
		return nil, fmt.Errorf("session: decode record: %w", err)
	}
	s.Key = rec.Key
	s.LastSeen = rec.LastSeen
	m.remember(rec, s)
	return s, nil
}

func (m *Manager) remember(rec *store.Record, s *Session) {
	if m.decodedSize.Add(1) > maxDecoded {
		m.decoded.Clear()
		m.decodedSize.Store(1)
	}
	m.decoded.Store(rec.Key, &decodedRecord{data: bytes.Clone(rec.Data), s: *s})
}

// Load returns the session named by the request's cookie. It returns
// ErrNoSession when there is none, ErrExpired when it passed a deadline
// (and deletes it), and any other error when the store failed; callers must
// treat every error as "not signed in" (fail closed). With slide set, the
// idle deadline moves forward.
func (m *Manager) Load(ctx context.Context, r *http.Request, slide bool) (*Session, error) {
	c, err := r.Cookie(m.opts.CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, ErrNoSession
	}
	return m.LoadKey(ctx, KeyOf(c.Value), slide)
}

// LoadKey is Load by store key.
func (m *Manager) LoadKey(ctx context.Context, key string, slide bool) (*Session, error) {
	if t := m.opts.Toucher; t != nil {
		if err := t.settled(ctx, key); err != nil {
			return nil, fmt.Errorf("session: load: %w", err)
		}
	}
	rec, err := m.opts.Store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("session: load: %w", err)
	}
	if rec.App != m.opts.App {
		return nil, ErrNoSession
	}
	s, err := m.Open(rec)
	if err != nil {
		return nil, err
	}
	now := m.opts.Now()
	if reason := m.expired(s, now); reason != "" {
		m.End(ctx, s, reason)
		return nil, ErrExpired
	}
	if slide && now.Sub(s.LastSeen) >= m.touchInterval() {
		// Only the deadlines move: a nil Data keeps what is stored, which
		// may be newer than what was read (a refresh on another request).
		s.LastSeen = now
		rec.LastSeen, rec.ExpiresAt, rec.Data = now, s.ExpiresAt(m.opts.IdleTimeout), nil
		if t := m.opts.Toucher; t != nil {
			if s.slide = t.start(ctx, m.opts.Store, rec); s.slide != nil {
				return s, nil
			}
		}
		err := m.opts.Store.Update(ctx, rec)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNoSession
		}
		if err != nil {
			return nil, fmt.Errorf("session: touch: %w", err)
		}
	}
	return s, nil
}

// expired reports why s is no longer valid at now, or "" when it is.
func (m *Manager) expired(s *Session, now time.Time) string {
	switch {
	case !now.Before(s.AbsoluteExpiry):
		return "absolute"
	case !now.Before(s.LastSeen.Add(m.opts.IdleTimeout)):
		return "idle"
	}
	return ""
}

// touchInterval bounds how often a sliding session is written back: at most
// once a minute, or more often for short idle timeouts, so that reads stay
// reads on the hot path.
func (m *Manager) touchInterval() time.Duration {
	return min(time.Minute, m.opts.IdleTimeout/20)
}

// End deletes the session from the store and reports the reason.
func (m *Manager) End(ctx context.Context, s *Session, reason string) error {
	return m.EndKey(ctx, s.Key, reason)
}

// EndKey ends the session stored under key.
func (m *Manager) EndKey(ctx context.Context, key, reason string) error {
	m.decoded.Delete(key)
	if err := m.opts.Store.Delete(ctx, key); err != nil {
		return fmt.Errorf("session: end: %w", err)
	}
	m.ended(ctx, []string{key}, reason)
	return nil
}

// EndMatching ends this app's sessions of f's issuer by subject or sid
// (f.App is set to the manager's app) and returns their keys.
func (m *Manager) EndMatching(ctx context.Context, f store.Filter, reason string) ([]string, error) {
	f.App = m.opts.App
	keys, err := m.opts.Store.DeleteMatching(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("session: end matching: %w", err)
	}
	for _, k := range keys {
		m.decoded.Delete(k)
	}
	m.ended(ctx, keys, reason)
	return keys, nil
}

// List returns this app's live sessions of f's issuer by subject or sid,
// newest first. Records that cannot be opened with the current keys are
// left out (they cannot be loaded either), and so are records whose sealed
// data disagrees with the index that found them.
func (m *Manager) List(ctx context.Context, f store.Filter) ([]*Session, error) {
	f.App = m.opts.App
	recs, err := m.opts.Store.List(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	out := make([]*Session, 0, len(recs))
	now := m.opts.Now()
	for _, rec := range recs {
		s, err := m.Open(rec)
		if err != nil || m.expired(s, now) != "" || s.Issuer != f.Issuer ||
			(f.Subject != "" && s.Subject != f.Subject) || (f.SID != "" && s.SID != f.SID) {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Session) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(a.Handle, b.Handle))
	})
	return out, nil
}

// Once records a one-time value in the store (see store.Store.Once).
func (m *Manager) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return m.opts.Store.Once(ctx, key, ttl)
}

func (m *Manager) ended(ctx context.Context, keys []string, reason string) {
	if len(keys) > 0 && m.opts.OnEnd != nil {
		m.opts.OnEnd(ctx, keys, reason)
	}
}

// SetCookie sends the session cookie. The cookie carries no Max-Age: it lives
// as long as the browser session, and the server enforces every deadline.
func (m *Manager) SetCookie(w http.ResponseWriter, value string) {
	http.SetCookie(w, &http.Cookie{
		Name:     m.opts.CookieName,
		Value:    value,
		Path:     "/",
		Secure:   true,
		HttpOnly: true,
		SameSite: m.opts.SameSite,
	})
}

// ClearCookie tells the browser to drop the session cookie.
func (m *Manager) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     m.opts.CookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Secure:   true,
		HttpOnly: true,
		SameSite: m.opts.SameSite,
	})
}
