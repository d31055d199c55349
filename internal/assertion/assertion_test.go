package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const issuer = "https://app.example"

func newSigner(t *testing.T, st store.Store, ring *seal.Ring, clock *testkit.Clock) *Signer {
	t.Helper()
	s, err := New(Options{Issuer: issuer, Store: st, Ring: ring, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwks(t *testing.T, s *Signer) (jose.JSONWebKeySet, http.Header) {
	t.Helper()
	w := httptest.NewRecorder()
	s.JWKS(w, httptest.NewRequest("GET", "/bff/jwks.json", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("jwks.json = %d %s", w.Code, w.Body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatalf("jwks.json: %v", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("jwks.json publishes a private key %s", k.KeyID)
		}
	}
	return set, w.Header()
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// verify checks raw as an API would, with the published keys: signature,
// typ, iss, aud and exp at time at.
func verify(t *testing.T, set jose.JSONWebKeySet, raw, audience string, at time.Time) (map[string]any, error) {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "JWT" {
		t.Errorf("typ = %v, want JWT", typ)
	}
	var std jwt.Claims
	all := map[string]any{}
	if err := tok.Claims(set, &std, &all); err != nil {
		return nil, err
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: at}, 0); err != nil {
		return nil, err
	}
	return all, nil
}

func TestAssertionVerifiesWithJWKS(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	s := newSigner(t, memstore.New(memstore.Options{Now: clock.Now}), seal.Ephemeral(), clock)
	raw, err := s.Sign(context.Background(), "https://orders.internal", "alice", map[string]any{"email": "a@example.com", "exp": 1, "iss": "evil"})
	if err != nil {
		t.Fatal(err)
	}
	set, h := jwks(t, s)
	if cc := h.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control = %q", cc)
	}
	claims, err := verify(t, set, raw, "https://orders.internal", clock.Now())
	if err != nil {
		t.Fatalf("assertion does not verify with jwks.json: %v", err)
	}
	if claims["sub"] != "alice" || claims["email"] != "a@example.com" || claims["iss"] != issuer || claims["jti"] == "" {
		t.Errorf("claims = %v", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat > 60 || exp <= iat {
		t.Errorf("exp - iat = %v, want at most 60s", exp-iat)
	}
	if _, err := verify(t, set, raw, "https://orders.internal", clock.Now().Add(61*time.Second)); err == nil {
		t.Error("assertion accepted 61s after it was made")
	}
	if _, err := verify(t, set, raw, "https://billing.internal", clock.Now()); err == nil {
		t.Error("assertion accepted for another audience")
	}
	other, _ := s.Sign(context.Background(), "https://orders.internal", "alice", nil)
	c2, _ := verify(t, set, other, "https://orders.internal", clock.Now())
	if c2["jti"] == claims["jti"] {
		t.Error("two assertions share a jti")
	}
}

// Replicas on one store sign with one key, even when they start at once.
func TestReplicasShareOneKey(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	st := memstore.New(memstore.Options{Now: clock.Now})
	ring := seal.Ephemeral()
	signers := make([]*Signer, 4)
	raws := make([]string, len(signers))
	var wg sync.WaitGroup
	for i := range signers {
		signers[i] = newSigner(t, st, ring, clock)
		wg.Go(func() {
			raw, err := signers[i].Sign(context.Background(), "https://api", "alice", nil)
			if err != nil {
				t.Error(err)
			}
			raws[i] = raw
		})
	}
	wg.Wait()
	first, _ := jwks(t, signers[0])
	for i, s := range signers {
		set, _ := jwks(t, s)
		if !slices.Equal(kids(set), kids(first)) || len(set.Keys) != 1 {
			t.Errorf("replica %d publishes %q, replica 0 %q", i, kids(set), kids(first))
		}
		if _, err := verify(t, first, raws[i], "https://api", clock.Now()); err != nil {
			t.Errorf("replica %d's assertion does not verify with replica 0's keys: %v", i, err)
		}
	}
}

func TestRotationPublishesAheadAndRetainsThePreviousKey(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	st := memstore.New(memstore.Options{Now: clock.Now})
	ring := seal.Ephemeral()
	a, b := newSigner(t, st, ring, clock), newSigner(t, st, ring, clock)
	sign := func(s *Signer) string {
		raw, err := s.Sign(context.Background(), "https://api", "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	kidOf := func(raw string) string {
		tok, _ := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		return tok.Headers[0].KeyID
	}
	old := kidOf(sign(a))
	sign(b)

	// Due for rotation: a publishes the next key, which does not sign yet.
	clock.Advance(RotateEvery - PublishAhead + time.Second)
	if k := kidOf(sign(a)); k != old {
		t.Fatalf("the next key signed before its time")
	}
	set, _ := jwks(t, a)
	if len(set.Keys) != 2 {
		t.Fatalf("after rotation jwks.json has %q, want the current and the next key", kids(set))
	}
	// b re-reads within Reload and publishes the same two keys.
	clock.Advance(Reload)
	if setB, _ := jwks(t, b); !slices.Equal(kids(setB), kids(set)) {
		t.Errorf("replica b publishes %q, a %q", kids(setB), kids(set))
	}
	// The next key signs from its time, on both replicas, and the old one
	// is still published for assertions it signed just before.
	clock.Advance(PublishAhead)
	before := sign(a)
	if kidOf(before) == old || kidOf(sign(b)) != kidOf(before) {
		t.Errorf("after PublishAhead a signs with %s, b with %s (old %s)", kidOf(before), kidOf(sign(b)), old)
	}
	if set, _ := jwks(t, b); !slices.Contains(kids(set), old) {
		t.Error("the previous key was withdrawn while assertions it signed may be valid")
	}
	// Well after its successor took over, the old key is withdrawn.
	clock.Advance(RetainAfter + Reload)
	if set, _ := jwks(t, a); slices.Contains(kids(set), old) || len(set.Keys) != 1 {
		t.Errorf("retired key still published: %q", kids(set))
	}
}

// A record sealed with a session key no longer configured is replaced, not
// a dead end.
func TestUnreadableKeyRecordIsReplaced(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	st := memstore.New(memstore.Options{Now: clock.Now})
	if _, err := newSigner(t, st, seal.Ephemeral(), clock).Sign(context.Background(), "https://api", "alice", nil); err != nil {
		t.Fatal(err)
	}
	s := newSigner(t, st, seal.Ephemeral(), clock)
	raw, err := s.Sign(context.Background(), "https://api", "alice", nil)
	if err != nil {
		t.Fatalf("with the record unreadable: %v", err)
	}
	set, _ := jwks(t, s)
	if _, err := verify(t, set, raw, "https://api", clock.Now()); err != nil {
		t.Error(err)
	}
}

func TestStoreDownAtFirstUseFailsClosed(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	s := newSigner(t, &testkit.FailingStore{Err: errors.New("store down")}, seal.Ephemeral(), clock)
	if raw, err := s.Sign(context.Background(), "https://api", "alice", nil); err == nil {
		t.Errorf("signed %q without keys", raw)
	}
	w := httptest.NewRecorder()
	s.JWKS(w, httptest.NewRequest("GET", "/bff/jwks.json", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("jwks.json = %d, want 503", w.Code)
	}
}

func pemKey(t *testing.T, pkcs8 bool) (*ecdsa.PrivateKey, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if pkcs8 {
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	der, _ := x509.MarshalECPrivateKey(k)
	return k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func TestKeyFile(t *testing.T) {
	signing, a := pemKey(t, false)
	_, b := pemKey(t, true)
	path := filepath.Join(t.TempDir(), "assertion.pem")
	os.WriteFile(path, append(a, b...), 0o600)
	clock := testkit.NewClock(time.Now())
	s, err := New(Options{Issuer: issuer, KeyFile: path, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Sign(context.Background(), "https://api", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := jwks(t, s)
	if len(set.Keys) != 2 {
		t.Errorf("jwks.json has %d keys, want both of the file's", len(set.Keys))
	}
	tok, _ := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	var c jwt.Claims
	if err := tok.Claims(&signing.PublicKey, &c); err != nil {
		t.Errorf("not signed with the file's first key: %v", err)
	}

	rsa := filepath.Join(t.TempDir(), "p384.pem")
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(k)
	os.WriteFile(rsa, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	if _, err := New(Options{Issuer: issuer, KeyFile: rsa}); err == nil {
		t.Error("a P-384 key was accepted for ES256")
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("no key here"), 0o600)
	if _, err := New(Options{Issuer: issuer, KeyFile: empty}); err == nil {
		t.Error("a file without a key was accepted")
	}
}
