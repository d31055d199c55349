// Package seal encrypts and authenticates small values, such as session
// records and login transaction cookies, under a rotatable key ring.
//
// Every key has a short id. Seal always uses the primary (first) key and
// writes its id in front of the ciphertext; Open accepts any key in the
// ring, so adding a new primary key and keeping the old ones for a while
// rotates keys without invalidating what was sealed before. The AEAD is
// XChaCha20-Poly1305 with a random 192-bit nonce per message, and callers
// bind every ciphertext to its purpose with associated data.
package seal

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the length in bytes of a ring key.
const KeySize = chacha20poly1305.KeySize

// ErrInvalid is returned by Open when the input was not sealed by a key of
// the ring for the given associated data, or has been altered.
var ErrInvalid = errors.New("seal: invalid or tampered value")

// Key is one entry of a Ring.
type Key struct {
	ID     string
	Secret []byte // KeySize bytes
}

// Ring seals under its primary key and opens under any of its keys. A Ring
// is immutable and safe for concurrent use.
type Ring struct {
	primary string
	keys    map[string]aead
	secrets map[string][]byte
	order   []string
}

type aead interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	NonceSize() int
	Overhead() int
}

// NewRing builds a ring whose first key is the primary one.
func NewRing(keys ...Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: a key ring needs at least one key")
	}
	r := &Ring{primary: keys[0].ID, keys: make(map[string]aead, len(keys)), secrets: make(map[string][]byte, len(keys))}
	for _, k := range keys {
		if err := validID(k.ID); err != nil {
			return nil, err
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("seal: key %q is %d bytes, want %d", k.ID, len(k.Secret), KeySize)
		}
		if _, dup := r.keys[k.ID]; dup {
			return nil, fmt.Errorf("seal: key id %q appears twice", k.ID)
		}
		a, err := chacha20poly1305.NewX(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", k.ID, err)
		}
		r.keys[k.ID] = a
		r.secrets[k.ID] = append([]byte(nil), k.Secret...)
		r.order = append(r.order, k.ID)
	}
	return r, nil
}

// Ephemeral returns a ring with one random key that lives as long as the
// process. It suits stores that do not outlive the process.
func Ephemeral() *Ring {
	secret := make([]byte, KeySize)
	rand.Read(secret)
	r, err := NewRing(Key{ID: "ephemeral", Secret: secret})
	if err != nil {
		panic(err) // unreachable: the key is well formed
	}
	return r
}

// Derive returns a ring with one key per key of r, each derived with HKDF
// for the given purpose, so that one configured key ring can serve several
// independent uses.
func (r *Ring) Derive(purpose string) (*Ring, error) {
	keys := make([]Key, 0, len(r.order))
	for _, id := range r.order {
		k, err := hkdf.Key(sha256.New, r.secrets[id], nil, "gatehouse "+purpose, KeySize)
		if err != nil {
			return nil, fmt.Errorf("seal: derive key %q: %w", id, err)
		}
		keys = append(keys, Key{ID: id, Secret: k})
	}
	return NewRing(keys...)
}

// IDs returns the key ids, primary first.
func (r *Ring) IDs() []string { return append([]string(nil), r.order...) }

// Primary returns the id of the key that Seal uses.
func (r *Ring) Primary() string { return r.primary }

// Seal encrypts plaintext under the primary key, bound to ad.
// The output is: key id, '.', nonce, ciphertext.
func (r *Ring) Seal(plaintext, ad []byte) []byte {
	a := r.keys[r.primary]
	out := make([]byte, 0, len(r.primary)+1+a.NonceSize()+len(plaintext)+a.Overhead())
	out = append(out, r.primary...)
	out = append(out, '.')
	nonce := out[len(out) : len(out)+a.NonceSize()]
	rand.Read(nonce)
	out = out[:len(out)+a.NonceSize()]
	return a.Seal(out, nonce, plaintext, ad)
}

// Open decrypts a value produced by Seal of any ring holding the same key.
func (r *Ring) Open(sealed, ad []byte) ([]byte, error) {
	dot := -1
	for i := 0; i < len(sealed) && i <= maxIDLen; i++ {
		if sealed[i] == '.' {
			dot = i
			break
		}
	}
	if dot <= 0 {
		return nil, ErrInvalid
	}
	a, ok := r.keys[string(sealed[:dot])]
	if !ok {
		return nil, ErrInvalid
	}
	rest := sealed[dot+1:]
	if len(rest) < a.NonceSize()+a.Overhead() {
		return nil, ErrInvalid
	}
	pt, err := a.Open(nil, rest[:a.NonceSize()], rest[a.NonceSize():], ad)
	if err != nil {
		return nil, ErrInvalid
	}
	return pt, nil
}

// SealString is Seal with unpadded base64url output, for cookies.
func (r *Ring) SealString(plaintext, ad []byte) string {
	return base64.RawURLEncoding.EncodeToString(r.Seal(plaintext, ad))
}

// OpenString opens a value produced by SealString.
func (r *Ring) OpenString(sealed string, ad []byte) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return nil, ErrInvalid
	}
	return r.Open(raw, ad)
}

const maxIDLen = 32

func validID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("seal: key id %q must be 1 to %d characters", id, maxIDLen)
	}
	if strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return fmt.Errorf("seal: key id %q may only hold letters, digits, '-' and '_'", id)
	}
	return nil
}

// ParseKey parses a key written as "id:base64url-secret" (the form that
// GenerateKey prints and configuration accepts). Standard base64 is accepted too.
func ParseKey(s string) (Key, error) {
	id, enc, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Key{}, errors.New(`seal: a key is written "id:base64-secret"`)
	}
	if err := validID(id); err != nil {
		return Key{}, err
	}
	var secret []byte
	var err error
	for _, e := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if secret, err = e.DecodeString(enc); err == nil {
			break
		}
	}
	if err != nil {
		return Key{}, fmt.Errorf("seal: key %q: secret is not base64", id)
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("seal: key %q: secret is %d bytes, want %d", id, len(secret), KeySize)
	}
	return Key{ID: id, Secret: secret}, nil
}

// GenerateKey returns a new random key in the "id:base64url-secret" form.
func GenerateKey(id string) (string, error) {
	if err := validID(id); err != nil {
		return "", err
	}
	secret := make([]byte, KeySize)
	rand.Read(secret)
	return id + ":" + base64.RawURLEncoding.EncodeToString(secret), nil
}
