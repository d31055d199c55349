package assertion

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Timings of generated keys; see the package documentation.
const (
	// TTL is how long an assertion is valid.
	TTL = 60 * time.Second
	// Reload is how often a replica re-reads the key record.
	Reload = time.Minute
	// PublishAhead is how long a new key is published before it signs.
	PublishAhead = 10 * time.Minute
	// RotateEvery is how long a generated key signs before the next.
	RotateEvery = 7 * 24 * time.Hour
	// RetainAfter is how long a key stays published once its successor
	// signs.
	RetainAfter = time.Hour
)

// RecordKey is the store key of the generated key set. It cannot collide
// with a session key (a hash of a cookie value) and names no issuer, so no
// session filter selects it.
const RecordKey = "assertion-signing-key"

// Options configure a Signer.
type Options struct {
	// Issuer is the gateway's public origin, the assertions' iss. Required.
	Issuer string
	// KeyFile names a PEM file of EC P-256 private keys (SEC 1 or PKCS #8):
	// the first signs, the others are published only. Empty: generated keys
	// kept in Store.
	KeyFile string
	// Store keeps generated keys; Ring seals them. Required without KeyFile.
	Store store.Store
	Ring  *seal.Ring
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives key management events; nil discards.
	Logger *slog.Logger
}

// Signer signs assertions. It is safe for concurrent use.
type Signer struct {
	opts Options
	// static is the key set from KeyFile, nil for generated keys.
	static []*key

	mu       sync.Mutex
	keys     []*key // generated keys, oldest first
	loadedAt time.Time
}

// key is one signing key. From is when it starts signing (zero: from the
// start); a key file's later keys have From set far in the future.
type key struct {
	priv *ecdsa.PrivateKey
	kid  string
	from time.Time
}

// New checks opts and, with a KeyFile, loads its keys. Generated keys are
// read or created on first use.
func New(opts Options) (*Signer, error) {
	if opts.Issuer == "" {
		return nil, errors.New("assertion: an issuer is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Signer{opts: opts}
	if opts.KeyFile != "" {
		keys, err := readKeyFile(opts.KeyFile)
		if err != nil {
			return nil, err
		}
		s.static = keys
		return s, nil
	}
	if opts.Store == nil || opts.Ring == nil {
		return nil, errors.New("assertion: a store and a key ring are required without a key file")
	}
	return s, nil
}

// Sign returns a signed assertion for audience with subject sub and the
// extra claims (registered claim names among them are ignored).
func (s *Signer) Sign(ctx context.Context, audience, sub string, extra map[string]any) (string, error) {
	keys, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	now := s.opts.Now()
	k := signingKey(keys, now)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("assertion: %w", err)
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := make(map[string]any, len(extra)+6)
	for name, v := range extra {
		if !slices.Contains(registered, name) {
			claims[name] = v
		}
	}
	claims["iss"] = s.opts.Issuer
	claims["aud"] = audience
	claims["sub"] = sub
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(TTL).Unix()
	claims["jti"] = base64.RawURLEncoding.EncodeToString(jti)
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("assertion: sign: %w", err)
	}
	return raw, nil
}

// registered are the claims Sign sets itself (RFC 7519 §4.1).
var registered = []string{"iss", "aud", "sub", "iat", "exp", "jti", "nbf"}

// JWKS serves the public keys as a JSON Web Key Set (RFC 7517 §5).
func (s *Signer) JWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpx.JSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "")
		return
	}
	keys, err := s.current(r.Context())
	if err != nil {
		s.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "assertion: signing keys unavailable", slog.Any("err", err))
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The signing keys cannot be read right now.")
		return
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range published(keys, s.opts.Now()) {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Short: a new key is published PublishAhead before it signs.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	json.NewEncoder(w).Encode(set)
}

// signingKey is the newest key whose time to sign has come, or the oldest
// when none has (a clock slightly behind the one that made the first key).
func signingKey(keys []*key, now time.Time) *key {
	best := keys[0]
	for _, k := range keys {
		if !k.from.After(now) && k.from.After(best.from) {
			best = k
		}
	}
	return best
}

// published are the keys an API may meet: all but those whose successor
// has signed for longer than RetainAfter.
func published(keys []*key, now time.Time) []*key {
	var out []*key
	for _, k := range keys {
		if !retired(keys, k, now) {
			out = append(out, k)
		}
	}
	return out
}

func retired(keys []*key, k *key, now time.Time) bool {
	for _, n := range keys {
		if n.from.After(k.from) && !n.from.After(now.Add(-RetainAfter)) {
			return true
		}
	}
	return false
}

// current returns the key set, re-reading generated keys every Reload.
func (s *Signer) current(ctx context.Context) ([]*key, error) {
	if s.static != nil {
		return s.static, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if s.keys != nil && now.Sub(s.loadedAt) < Reload && !now.Before(s.loadedAt) {
		return s.keys, nil
	}
	keys, err := s.load(ctx, now)
	if err != nil {
		if s.keys != nil {
			// Keep signing with what we had, and try again after Reload: a
			// key that other replicas sign with was published PublishAhead
			// before, so it is in what we had.
			s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "assertion: re-reading signing keys failed", slog.Any("err", err))
			s.loadedAt = now
			return s.keys, nil
		}
		return nil, err
	}
	s.keys, s.loadedAt = keys, now
	return keys, nil
}

// load reads the key record, creating it when missing and adding the next
// key when the newest is due for rotation.
func (s *Signer) load(ctx context.Context, now time.Time) ([]*key, error) {
	for range 50 {
		rec, err := s.opts.Store.Get(ctx, RecordKey)
		var keys []*key
		switch {
		case err == nil:
			keys, err = s.open(rec)
			if err != nil {
				// Sealed with a session key no longer configured: start over,
				// as every replica with the same keys will.
				s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "assertion: stored signing keys unreadable, replacing them", slog.Any("err", err))
				if err := s.create(ctx, now, "replace:"+digest(rec.Data)); err != nil {
					return nil, err
				}
				continue
			}
		case errors.Is(err, store.ErrNotFound):
			if err := s.create(ctx, now, "create"); err != nil {
				return nil, err
			}
			continue
		default:
			return nil, fmt.Errorf("assertion: read signing keys: %w", err)
		}
		if newest := keys[len(keys)-1]; now.Sub(newest.from) >= RotateEvery-PublishAhead {
			rotated, err := s.rotate(ctx, now, keys)
			if err != nil {
				s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "assertion: rotating the signing key failed", slog.Any("err", err))
			}
			if rotated != nil {
				return rotated, nil
			}
		} else if s.opts.Ring.Primary() != sealedWith(rec.Data) {
			// Re-seal under the primary session key, so that retiring
			// the old one keeps the record readable.
			s.save(ctx, keys, s.opts.Store.Update)
		}
		return keys, nil
	}
	return nil, errors.New("assertion: signing keys did not settle in the store")
}

// create elects one replica to store a fresh key set; the others wait for
// it and read it back.
func (s *Signer) create(ctx context.Context, now time.Time, why string) error {
	first, err := s.opts.Store.Once(ctx, "assertion-key:"+why, 30*time.Second)
	if err != nil {
		return fmt.Errorf("assertion: elect key creation: %w", err)
	}
	if !first {
		return s.wait(ctx)
	}
	k, err := generate(now)
	if err != nil {
		return err
	}
	s.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "assertion: signing key created", slog.String("kid", k.kid))
	return s.save(ctx, []*key{k}, s.opts.Store.Create)
}

// rotate adds the next key, signing PublishAhead from now, and drops keys
// retired by now; one replica does it per newest key, the others see the
// result at their next reload (nil keys). The record is replaced whole:
// only the elected replica writes it.
func (s *Signer) rotate(ctx context.Context, now time.Time, keys []*key) ([]*key, error) {
	newest := keys[len(keys)-1]
	first, err := s.opts.Store.Once(ctx, "assertion-key:rotate:"+newest.kid, PublishAhead)
	if err != nil || !first {
		return nil, err
	}
	next, err := generate(now.Add(PublishAhead))
	if err != nil {
		return nil, err
	}
	var kept []*key
	for _, k := range append(keys, next) {
		if !retired(keys, k, now) {
			kept = append(kept, k)
		}
	}
	if err := s.save(ctx, kept, s.opts.Store.Update); err != nil {
		return nil, err
	}
	s.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "assertion: next signing key published", slog.String("kid", next.kid), slog.Time("signs_from", next.from))
	return kept, nil
}

// wait gives the elected replica a moment to write, bounded by ctx.
func (s *Signer) wait(ctx context.Context) error {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// stored is the sealed form of the key set.
type stored struct {
	Keys []storedKey `json:"keys"`
}

type storedKey struct {
	PKCS8 []byte    `json:"pkcs8"`
	From  time.Time `json:"from,omitzero"`
}

func (s *Signer) save(ctx context.Context, keys []*key, put func(context.Context, *store.Record) error) error {
	var st stored
	for _, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			return fmt.Errorf("assertion: %w", err)
		}
		st.Keys = append(st.Keys, storedKey{PKCS8: der, From: k.from})
	}
	plain, err := json.Marshal(st)
	if err != nil {
		return err
	}
	err = put(ctx, &store.Record{
		Key:       RecordKey,
		LastSeen:  s.opts.Now(),
		ExpiresAt: s.opts.Now().AddDate(10, 0, 0),
		Data:      s.opts.Ring.Seal(plain, []byte(RecordKey)),
	})
	if err != nil {
		return fmt.Errorf("assertion: store signing keys: %w", err)
	}
	return nil
}

func (s *Signer) open(rec *store.Record) ([]*key, error) {
	plain, err := s.opts.Ring.Open(rec.Data, []byte(RecordKey))
	if err != nil {
		return nil, err
	}
	var st stored
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, fmt.Errorf("assertion: stored keys: %w", err)
	}
	if len(st.Keys) == 0 {
		return nil, errors.New("assertion: stored key set is empty")
	}
	keys := make([]*key, 0, len(st.Keys))
	for _, sk := range st.Keys {
		pk, err := x509.ParsePKCS8PrivateKey(sk.PKCS8)
		if err != nil {
			return nil, fmt.Errorf("assertion: stored key: %w", err)
		}
		k, err := newKey(pk, sk.From)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	slices.SortStableFunc(keys, func(a, b *key) int { return a.from.Compare(b.from) })
	return keys, nil
}

// sealedWith returns the id of the ring key that sealed data.
func sealedWith(data []byte) string {
	for i, c := range data {
		if c == '.' {
			return string(data[:i])
		}
	}
	return ""
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

func generate(from time.Time) (*key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("assertion: generate key: %w", err)
	}
	return newKey(priv, from)
}

func newKey(pk any, from time.Time) (*key, error) {
	priv, ok := pk.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("assertion: signing keys must be EC P-256 (ES256)")
	}
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("assertion: key thumbprint: %w", err)
	}
	return &key{priv: priv, kid: base64.RawURLEncoding.EncodeToString(tp), from: from}, nil
}

// readKeyFile reads the PEM keys of a key file: the first signs, the
// others are published only.
func readKeyFile(path string) ([]*key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assertion: signing key file: %w", err)
	}
	var keys []*key
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var pk any
		switch b.Type {
		case "EC PRIVATE KEY":
			pk, err = x509.ParseECPrivateKey(b.Bytes)
		case "PRIVATE KEY":
			pk, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("assertion: signing key file %s: %w", path, err)
		}
		from := time.Time{}
		if len(keys) > 0 {
			from = time.Unix(1<<40, 0) // published, never signs
		}
		k, err := newKey(pk, from)
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, path)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("assertion: signing key file %s holds no EC private key", path)
	}
	return keys, nil
}
