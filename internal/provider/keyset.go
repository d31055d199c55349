package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// keySet verifies JWS signatures with the provider's published keys. It
// refetches the JWKS only for a key id it does not hold (OpenID Connect Core
// §10.1.1, key rotation), and at most a few times a minute: a forged token
// with a random kid, sent to an unauthenticated endpoint such as the
// back-channel logout, cannot turn Gatehouse into a JWKS request amplifier.
// A bad signature under a known key never causes a refetch. It implements
// go-oidc's KeySet and is safe for concurrent use.
type keySet struct {
	url    string
	client *http.Client
	algs   []jose.SignatureAlgorithm
	limit  *rate.Limiter
	group  singleflight.Group

	mu   sync.RWMutex
	keys []jose.JSONWebKey
}

// jwksRefetch bounds refetches for unknown key ids.
var jwksRefetch = rate.Every(5 * time.Second)

const jwksBurst = 2

func newKeySet(url string, client *http.Client, algs []string) *keySet {
	ks := &keySet{url: url, client: client, limit: rate.NewLimiter(jwksRefetch, jwksBurst)}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

var errUnknownKey = errors.New("provider: token signed with a key the provider does not publish")

// VerifySignature checks the signature of a compact JWS and returns its payload.
func (ks *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, ks.algs)
	if err != nil {
		return nil, fmt.Errorf("provider: malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("provider: jwt must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	ks.mu.RLock()
	keys := ks.keys
	ks.mu.RUnlock()
	if payload, known, err := verifyWith(jws, keys, kid); known || err == nil {
		return payload, err
	}
	// Not signed by any key held: fetch the key set again, if allowed.
	if keys != nil && !ks.limit.Allow() {
		return nil, errUnknownKey
	}
	if keys, err = ks.fetch(ctx); err != nil {
		return nil, err
	}
	payload, _, err := verifyWith(jws, keys, kid)
	return payload, err
}

// verifyWith tries the keys that match kid (every key when kid is empty).
// known reports whether a key with that kid was held, in which case a
// failure is final.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) (payload []byte, known bool, err error) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if kid != "" {
			known = true
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true, nil
		}
	}
	if known {
		return nil, true, errors.New("provider: bad signature")
	}
	return nil, false, errUnknownKey
}

func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	v, err, _ := ks.group.Do("jwks", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := ks.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("provider: jwks: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("provider: jwks: status %d", resp.StatusCode)
		}
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
			return nil, fmt.Errorf("provider: jwks: %w", err)
		}
		var keys []jose.JSONWebKey
		for _, k := range set.Keys {
			// Only public signing keys: never a symmetric key, whatever
			// the document says.
			if k.IsPublic() && (k.Use == "" || k.Use == "sig") {
				keys = append(keys, k)
			}
		}
		ks.mu.Lock()
		ks.keys = keys
		ks.mu.Unlock()
		return keys, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]jose.JSONWebKey), nil
}
