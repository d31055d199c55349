package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
)

func key(t testing.TB, id string, fill byte) seal.Key {
	t.Helper()
	return seal.Key{ID: id, Secret: bytes.Repeat([]byte{fill}, seal.KeySize)}
}

func ring(t testing.TB, keys ...seal.Key) *seal.Ring {
	t.Helper()
	r, err := seal.NewRing(keys...)
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	r := ring(t, key(t, "k1", 1))
	for _, tc := range []struct {
		name   string
		plain  []byte
		ad     []byte
		openAD []byte
	}{
		{"empty", nil, []byte("ad"), []byte("ad")},
		{"small", []byte("tokens"), []byte("session-key"), []byte("session-key")},
		{"large", bytes.Repeat([]byte{0xab}, 64<<10), []byte("x"), []byte("x")},
		{"no ad", []byte("p"), nil, nil},
		{"nil and empty ad are the same", []byte("p"), nil, []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed := r.Seal(tc.plain, tc.ad)
			if !bytes.HasPrefix(sealed, []byte("k1.")) {
				t.Errorf("sealed value does not start with the key id: %q", sealed[:4])
			}
			if want := len("k1.") + 24 + len(tc.plain) + 16; len(sealed) != want {
				t.Errorf("sealed length = %d; want %d", len(sealed), want)
			}
			got, err := r.Open(sealed, tc.openAD)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.plain) {
				t.Fatalf("Open = %q; want %q", got, tc.plain)
			}
			s := r.SealString(tc.plain, tc.ad)
			got, err = r.OpenString(s, tc.openAD)
			if err != nil || !bytes.Equal(got, tc.plain) {
				t.Fatalf("OpenString = %q, %v; want %q", got, err, tc.plain)
			}
		})
	}
}

func TestSealIsRandomised(t *testing.T) {
	r := ring(t, key(t, "k1", 1))
	a, b := r.Seal([]byte("same"), []byte("ad")), r.Seal([]byte("same"), []byte("ad"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same value are equal; the nonce must be random")
	}
}

// TestTamperingIsDetected flips one bit in every byte (key id, separator,
// nonce, ciphertext, tag), truncates and extends the sealed value.
func TestTamperingIsDetected(t *testing.T) {
	r := ring(t, key(t, "k1", 1), key(t, "k2", 2))
	sealed := r.Seal([]byte("refresh token"), []byte("ad"))
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(sealed)
			bad[i] ^= bit
			if _, err := r.Open(bad, []byte("ad")); !errors.Is(err, seal.ErrInvalid) {
				t.Errorf("byte %d ^ %#x: Open = %v; want ErrInvalid", i, bit, err)
			}
		}
	}
	for n := range len(sealed) {
		if _, err := r.Open(sealed[:n], []byte("ad")); !errors.Is(err, seal.ErrInvalid) {
			t.Errorf("truncated to %d bytes: Open = %v; want ErrInvalid", n, err)
		}
	}
	if _, err := r.Open(append(bytes.Clone(sealed), 0), []byte("ad")); !errors.Is(err, seal.ErrInvalid) {
		t.Errorf("extended by one byte: Open = %v; want ErrInvalid", err)
	}
}

func TestWrongAssociatedData(t *testing.T) {
	r := ring(t, key(t, "k1", 1))
	sealed := r.Seal([]byte("p"), []byte("session-a"))
	for _, ad := range [][]byte{nil, []byte("session-b"), []byte("session-"), []byte("session-aa"), []byte("SESSION-A")} {
		if _, err := r.Open(sealed, ad); !errors.Is(err, seal.ErrInvalid) {
			t.Errorf("Open with ad %q = %v; want ErrInvalid", ad, err)
		}
	}
}

func TestRotation(t *testing.T) {
	old := ring(t, key(t, "old", 1))
	rotated := ring(t, key(t, "new", 2), key(t, "old", 1))
	if rotated.Primary() != "new" || !slices.Equal(rotated.IDs(), []string{"new", "old"}) {
		t.Fatalf("Primary/IDs = %q/%q", rotated.Primary(), rotated.IDs())
	}

	got, err := rotated.Open(old.Seal([]byte("before"), []byte("ad")), []byte("ad"))
	if err != nil || string(got) != "before" {
		t.Fatalf("rotated ring opening an old value = %q, %v", got, err)
	}
	sealed := rotated.Seal([]byte("after"), []byte("ad"))
	if !bytes.HasPrefix(sealed, []byte("new.")) {
		t.Fatalf("rotated ring did not seal with its primary key: %q", sealed[:4])
	}
	if _, err := old.Open(sealed, []byte("ad")); !errors.Is(err, seal.ErrInvalid) {
		t.Fatalf("old ring opening a value of the new key = %v; want ErrInvalid", err)
	}

	// A key with the same id but another secret opens nothing.
	impostor := ring(t, key(t, "old", 9))
	if _, err := impostor.Open(old.Seal([]byte("x"), nil), nil); !errors.Is(err, seal.ErrInvalid) {
		t.Fatalf("same id, other secret: Open = %v; want ErrInvalid", err)
	}
}

func TestNewRingRejectsBadKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []seal.Key
	}{
		{"no keys", nil},
		{"empty id", []seal.Key{key(t, "", 1)}},
		{"long id", []seal.Key{key(t, strings.Repeat("a", 33), 1)}},
		{"id with dot", []seal.Key{key(t, "a.b", 1)}},
		{"id with colon", []seal.Key{key(t, "a:b", 1)}},
		{"short secret", []seal.Key{{ID: "a", Secret: make([]byte, 16)}}},
		{"long secret", []seal.Key{{ID: "a", Secret: make([]byte, 33)}}},
		{"duplicate id", []seal.Key{key(t, "a", 1), key(t, "a", 2)}},
	} {
		if _, err := seal.NewRing(tc.keys...); err == nil {
			t.Errorf("%s: NewRing succeeded; want an error", tc.name)
		}
	}
	if _, err := seal.NewRing(key(t, strings.Repeat("a", 32), 1)); err != nil {
		t.Errorf("32-character id: %v", err)
	}
}

func TestNewRingCopiesSecrets(t *testing.T) {
	k := key(t, "k", 1)
	r := ring(t, k)
	d1, err := r.Derive("p")
	if err != nil {
		t.Fatal(err)
	}
	k.Secret[0] ^= 0xff
	d2, err := r.Derive("p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Open(d1.Seal([]byte("x"), nil), nil); err != nil {
		t.Fatalf("changing the caller's secret after NewRing changed the ring: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	secret := bytes.Repeat([]byte{0xfb}, seal.KeySize) // encodes differently in URL and standard base64
	for _, tc := range []struct {
		name, in string
	}{
		{"raw url", "k1:" + base64.RawURLEncoding.EncodeToString(secret)},
		{"padded url", "k1:" + base64.URLEncoding.EncodeToString(secret)},
		{"standard", "k1:" + base64.StdEncoding.EncodeToString(secret)},
		{"raw standard", "k1:" + base64.RawStdEncoding.EncodeToString(secret)},
		{"surrounding space", "  k1:" + base64.RawURLEncoding.EncodeToString(secret) + "\n"},
	} {
		k, err := seal.ParseKey(tc.in)
		if err != nil {
			t.Errorf("%s: ParseKey: %v", tc.name, err)
			continue
		}
		if k.ID != "k1" || !bytes.Equal(k.Secret, secret) {
			t.Errorf("%s: ParseKey = %q, %x", tc.name, k.ID, k.Secret)
		}
	}
	good := base64.RawURLEncoding.EncodeToString(secret)
	for _, bad := range []string{
		"",
		"k1",
		good,
		":" + good,
		"k 1:" + good,
		"k.1:" + good,
		strings.Repeat("k", 33) + ":" + good,
		"k1:",
		"k1:not base64!",
		"k1:" + base64.RawURLEncoding.EncodeToString(secret[:16]),
		"k1:" + base64.RawURLEncoding.EncodeToString(append(secret, 0)),
	} {
		if k, err := seal.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) = %q; want an error", bad, k.ID)
		} else if strings.Contains(err.Error(), good) {
			t.Errorf("ParseKey error %q repeats the secret", err)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := seal.GenerateKey("2030-01")
	if err != nil {
		t.Fatal(err)
	}
	b, err := seal.GenerateKey("2030-01")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two generated keys are equal")
	}
	k, err := seal.ParseKey(a)
	if err != nil {
		t.Fatalf("ParseKey(GenerateKey()): %v", err)
	}
	if k.ID != "2030-01" || len(k.Secret) != seal.KeySize {
		t.Fatalf("generated key parsed to %q with %d bytes", k.ID, len(k.Secret))
	}
	r := ring(t, k)
	if got, err := r.Open(r.Seal([]byte("x"), nil), nil); err != nil || string(got) != "x" {
		t.Fatalf("generated key does not seal: %q, %v", got, err)
	}
	for _, id := range []string{"", "a b", "a:b", strings.Repeat("x", 33)} {
		if _, err := seal.GenerateKey(id); err == nil {
			t.Errorf("GenerateKey(%q) succeeded; want an error", id)
		}
	}
}

func TestDerive(t *testing.T) {
	base := ring(t, key(t, "new", 2), key(t, "old", 1))
	derive := func(r *seal.Ring, purpose string) *seal.Ring {
		t.Helper()
		d, err := r.Derive(purpose)
		if err != nil {
			t.Fatalf("Derive(%q): %v", purpose, err)
		}
		return d
	}
	sessions, cookies := derive(base, "session"), derive(base, "login-cookie")
	if !slices.Equal(sessions.IDs(), base.IDs()) || sessions.Primary() != "new" {
		t.Fatalf("derived ring ids = %q; want %q", sessions.IDs(), base.IDs())
	}
	sealed := sessions.Seal([]byte("x"), nil)
	for name, other := range map[string]*seal.Ring{"other purpose": cookies, "base ring": base} {
		if _, err := other.Open(sealed, nil); !errors.Is(err, seal.ErrInvalid) {
			t.Errorf("%s opened a value sealed for another purpose: %v", name, err)
		}
	}
	if _, err := sessions.Open(base.Seal([]byte("x"), nil), nil); !errors.Is(err, seal.ErrInvalid) {
		t.Error("derived ring opened a value of the base ring")
	}
	// Derivation is deterministic, so replicas sharing the base keys agree,
	// and it keeps rotation working.
	if got, err := derive(base, "session").Open(sealed, nil); err != nil || string(got) != "x" {
		t.Errorf("a second derivation for the same purpose cannot open: %v", err)
	}
	oldOnly := derive(ring(t, key(t, "old", 1)), "session")
	if _, err := sessions.Open(oldOnly.Seal([]byte("y"), nil), nil); err != nil {
		t.Errorf("derived rotated ring cannot open what the derived old ring sealed: %v", err)
	}
}

func TestEphemeral(t *testing.T) {
	a, b := seal.Ephemeral(), seal.Ephemeral()
	sealed := a.Seal([]byte("x"), nil)
	if got, err := a.Open(sealed, nil); err != nil || string(got) != "x" {
		t.Fatalf("Ephemeral round trip = %q, %v", got, err)
	}
	if _, err := b.Open(sealed, nil); !errors.Is(err, seal.ErrInvalid) {
		t.Fatal("two ephemeral rings share a key")
	}
}

func TestOpenMalformed(t *testing.T) {
	r := ring(t, key(t, "k1", 1))
	for _, in := range [][]byte{
		nil,
		[]byte("."),
		[]byte("k1"),
		[]byte("k1."),
		[]byte(".k1" + strings.Repeat("x", 64)),
		[]byte("unknown." + strings.Repeat("x", 64)),
		[]byte(strings.Repeat("k", 40) + "." + strings.Repeat("x", 64)),
	} {
		if _, err := r.Open(in, nil); !errors.Is(err, seal.ErrInvalid) {
			t.Errorf("Open(%q) = %v; want ErrInvalid", in, err)
		}
	}
	for _, in := range []string{"", "!!!", "a=", r.SealString([]byte("x"), nil) + "="} {
		if _, err := r.OpenString(in, nil); !errors.Is(err, seal.ErrInvalid) {
			t.Errorf("OpenString(%q) = %v; want ErrInvalid", in, err)
		}
	}
}

// FuzzOpenString feeds arbitrary cookie-like input to OpenString. It must
// never panic, must fail only with ErrInvalid, and may succeed only for a
// value the ring's keys really sealed (for this ad, always plain: the seed
// is sealed anew in each fuzzing process, with a random nonce).
func FuzzOpenString(f *testing.F) {
	r := ring(f, key(f, "k1", 1), key(f, "k0", 3))
	ad := []byte("ad")
	plain := []byte("the sealed value")
	valid := r.SealString(plain, ad)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add("")
	f.Add("azEu")
	f.Add(ring(f, key(f, "k0", 3)).SealString(plain, []byte("other")))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := r.OpenString(s, ad)
		if err != nil {
			if !errors.Is(err, seal.ErrInvalid) {
				t.Fatalf("OpenString(%q) error %v is not ErrInvalid", s, err)
			}
			return
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("OpenString(%q) = %q; it opened a value the ring never sealed", s, got)
		}
	})
}
