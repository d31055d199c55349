package apiauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Key set limits. A key set is fetched on first use, again for a key id it
// does not hold (OpenID Connect Core §10.1.1, rotation) and once it is
// older than keysMaxAge (so a key the signer withdrew stops working), but
// never more often than refetchEvery after a burst of refetchBurst: a flood
// of tokens with made-up key ids cannot turn the API into a JWKS request
// amplifier. The limiter runs on the Verifier's clock.
const (
	refetchEvery = 5 * time.Second
	refetchBurst = 3
	keysMaxAge   = time.Hour
	fetchTimeout = 10 * time.Second
	maxJWKSBytes = 1 << 20
	maxKeys      = 100
)

var (
	// errUnknownKey: the token names a key the signer does not publish.
	errUnknownKey = errors.New("apiauth: signed with a key the signer does not publish")
	// errBadSignature: a published key with that id does not verify it.
	errBadSignature = errors.New("apiauth: bad signature")
	// errKeysUnavailable: no key set could be fetched, so nothing can be
	// verified; the request is answered 503, not refused as invalid.
	errKeysUnavailable = errors.New("apiauth: signing keys unavailable")
	errRateLimited     = errors.New("apiauth: key set refetch rate limited")
)

// keySet holds the public keys of one signer (the provider, or the
// gateway) and verifies JWS signatures with them. It is safe for
// concurrent use.
type keySet struct {
	// issuer, when set, is discovered (with go-oidc, which checks that the
	// discovery document names the same issuer) to find the JWKS URL.
	issuer string
	client *http.Client
	now    func() time.Time
	limit  *rate.Limiter
	group  singleflight.Group

	mu      sync.RWMutex
	url     string
	keys    []jose.JSONWebKey
	fetched time.Time
}

func newKeySet(issuer, jwksURL string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{
		issuer: issuer,
		url:    jwksURL,
		client: client,
		now:    now,
		limit:  rate.NewLimiter(rate.Every(refetchEvery), refetchBurst),
	}
}

// verify checks the signature of jws against the held keys and returns
// its payload, refetching the key set when it is missing, stale, or lacks
// the token's key id.
func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	keys, fetched := ks.snapshot()
	if keys == nil || ks.now().Sub(fetched) > keysMaxAge {
		err := ks.refresh(ctx)
		keys, _ = ks.snapshot()
		if keys == nil {
			return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
		}
	}
	payload, err := verifyWith(jws, keys)
	if !errors.Is(err, errUnknownKey) {
		return payload, err
	}
	switch err := ks.refresh(ctx); {
	case errors.Is(err, errRateLimited):
		return nil, errUnknownKey
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	keys, _ = ks.snapshot()
	return verifyWith(jws, keys)
}

func (ks *keySet) snapshot() ([]jose.JSONWebKey, time.Time) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys, ks.fetched
}

// verifyWith tries the keys whose id is the token's kid (every key when
// the token has none) and whose declared alg, if any, is the token's.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey) ([]byte, error) {
	h := jws.Signatures[0].Header
	known := false
	for i := range keys {
		k := &keys[i]
		if (h.KeyID != "" && k.KeyID != h.KeyID) || (k.Algorithm != "" && k.Algorithm != h.Algorithm) {
			continue
		}
		if h.KeyID != "" {
			known = true
		}
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	if known {
		// A bad signature under a key we hold never causes a refetch.
		return nil, errBadSignature
	}
	return nil, errUnknownKey
}

// refresh fetches the key set once for all concurrent callers, if the
// rate limit allows.
func (ks *keySet) refresh(ctx context.Context) error {
	_, err, _ := ks.group.Do("jwks", func() (any, error) {
		if !ks.limit.AllowN(ks.now(), 1) {
			return nil, errRateLimited
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		keys, err := ks.fetch(ctx)
		if err != nil {
			return nil, err
		}
		ks.mu.Lock()
		ks.keys, ks.fetched = keys, ks.now()
		ks.mu.Unlock()
		return nil, nil
	})
	return err
}

func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ks.mu.RLock()
	jwksURL := ks.url
	ks.mu.RUnlock()
	if jwksURL == "" {
		// OpenID Connect Discovery 1.0 §4; go-oidc refuses a document
		// whose issuer is not ks.issuer (§4.3).
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, ks.client), ks.issuer)
		if err != nil {
			return nil, fmt.Errorf("apiauth: discovery: %w", err)
		}
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := p.Claims(&meta); err != nil || meta.JWKSURI == "" {
			return nil, errors.New("apiauth: discovery: no jwks_uri")
		}
		jwksURL = meta.JWKSURI
		ks.mu.Lock()
		ks.url = jwksURL
		ks.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("apiauth: jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("apiauth: jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("apiauth: jwks: status %d", resp.StatusCode)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return nil, fmt.Errorf("apiauth: jwks: %w", err)
	}
	keys := []jose.JSONWebKey{}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		// A key go-jose cannot read (an unknown kty or curve) is skipped,
		// not fatal: the rest of the set still verifies.
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		// Public signing keys only: never a symmetric key, whatever the
		// document says, so no HMAC-with-the-public-key confusion.
		if k.Valid() && k.IsPublic() && (k.Use == "" || k.Use == "sig") && len(keys) < maxKeys {
			keys = append(keys, k)
		}
	}
	return keys, nil
}
