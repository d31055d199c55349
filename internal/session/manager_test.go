package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

func newManager(t *testing.T) (*session.Manager, store.Store, *testkit.Clock) {
	t.Helper()
	c := testkit.NewClock(time.Unix(1_800_000_000, 0))
	st := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
	t.Cleanup(func() { st.Close() })
	m, err := session.NewManager(session.Options{
		Store: st, Ring: seal.Ephemeral(), CookieName: "__Host-test",
		IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, st, c
}

func request(value string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: "__Host-test", Value: value})
	return r
}

func TestNewManagerRefusesCookieWithoutHostPrefix(t *testing.T) {
	_, err := session.NewManager(session.Options{Store: memstore.New(memstore.Options{SweepInterval: -1}), Ring: seal.Ephemeral(),
		CookieName: "gatehouse", IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour})
	if err == nil {
		t.Fatal("cookie name without __Host- accepted")
	}
}

func TestStoreHoldsNeitherCookieNorTokens(t *testing.T) {
	m, st, _ := newManager(t)
	ctx := context.Background()
	id, err := m.Create(ctx, &session.Session{Subject: "alice", Tokens: session.Tokens{AccessToken: "at-secret-value", RefreshToken: "rt-secret-value"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Error("the store is keyed by the raw cookie value")
	}
	rec, err := st.Get(ctx, session.KeyOf(id))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"at-secret-value", "rt-secret-value", id} {
		if strings.Contains(string(rec.Data), s) || rec.Key == s {
			t.Errorf("stored record holds %q in clear", s)
		}
	}
}

func TestLoadSeesSavesAndEnds(t *testing.T) {
	m, st, _ := newManager(t)
	ctx := context.Background()
	id, _ := m.Create(ctx, &session.Session{Subject: "alice", Claims: map[string]any{"sub": "alice"}, Tokens: session.Tokens{AccessToken: "one"}})

	s, err := m.Load(ctx, request(id), false)
	if err != nil || s.Tokens.AccessToken != "one" {
		t.Fatalf("load = %v, %v", s, err)
	}
	// A caller changing its copy does not change what the next load sees.
	s.Tokens.AccessToken = "scribbled"
	again, _ := m.Load(ctx, request(id), false)
	if again.Tokens.AccessToken != "one" {
		t.Errorf("a caller's change leaked into the next load: %q", again.Tokens.AccessToken)
	}
	// A saved change is seen by the next load.
	again.Tokens.AccessToken = "two"
	if err := m.Save(ctx, again); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Load(ctx, request(id), false); s.Tokens.AccessToken != "two" {
		t.Errorf("load after save = %q, want two", s.Tokens.AccessToken)
	}
	// A session deleted behind the manager's back (another replica, a
	// back-channel logout) is gone at once, whatever was decoded before.
	st.Delete(ctx, session.KeyOf(id))
	if _, err := m.Load(ctx, request(id), false); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("load after delete = %v, want ErrNoSession", err)
	}
	// Save never brings it back.
	if err := m.Save(ctx, again); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("save after delete = %v, want ErrNotFound", err)
	}
}

func TestTamperedRecordIsRejected(t *testing.T) {
	m, st, _ := newManager(t)
	ctx := context.Background()
	id, _ := m.Create(ctx, &session.Session{Subject: "alice"})
	if _, err := m.Load(ctx, request(id), false); err != nil {
		t.Fatal(err)
	}
	rec, _ := st.Get(ctx, session.KeyOf(id))
	rec.Data[len(rec.Data)-1] ^= 1
	st.Update(ctx, rec)
	if _, err := m.Load(ctx, request(id), false); err == nil {
		t.Error("a tampered record loaded")
	}
}

func TestExpiryEndsTheSession(t *testing.T) {
	m, _, c := newManager(t)
	ctx := context.Background()
	id, _ := m.Create(ctx, &session.Session{Subject: "alice"})
	c.Advance(10 * time.Minute)
	if _, err := m.Load(ctx, request(id), true); !errors.Is(err, session.ErrExpired) && !errors.Is(err, session.ErrNoSession) {
		t.Errorf("load at the idle deadline = %v, want the session ended", err)
	}
	if _, err := m.Load(ctx, request(id), true); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("expired session still stored: %v", err)
	}
}

func TestMalformedCookies(t *testing.T) {
	m, _, _ := newManager(t)
	for _, v := range []string{"", "x", strings.Repeat("A", 200)} {
		if _, err := m.Load(context.Background(), request(v), false); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("cookie %q: err = %v", v, err)
		}
	}
}

func TestCreateBeyondMaxPerUserEndsLeastRecentlyUsed(t *testing.T) {
	c := testkit.NewClock(time.Unix(1_800_000_000, 0))
	st := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
	t.Cleanup(func() { st.Close() })
	type end struct {
		keys   []string
		reason string
	}
	var ends []end
	m, err := session.NewManager(session.Options{
		Store: st, Ring: seal.Ephemeral(), CookieName: "__Host-test",
		IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, Now: c.Now, MaxPerUser: 3,
		OnEnd: func(_ context.Context, keys []string, reason string) { ends = append(ends, end{keys, reason}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for range 3 {
		id, err := m.Create(ctx, &session.Session{Issuer: "https://op", Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		c.Advance(time.Minute)
	}
	// The first session is used again, so the second is the least
	// recently used one.
	if _, err := m.Load(ctx, request(ids[0]), true); err != nil {
		t.Fatal(err)
	}
	other, err := m.Create(ctx, &session.Session{Issuer: "https://op", Subject: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ends) != 0 {
		t.Fatalf("another user's sign-in ended %v", ends)
	}
	fourth, err := m.Create(ctx, &session.Session{Issuer: "https://op", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ends) != 1 || ends[0].reason != "max_per_user" || len(ends[0].keys) != 1 || ends[0].keys[0] != session.KeyOf(ids[1]) {
		t.Fatalf("ends = %+v, want the second session ended with reason max_per_user", ends)
	}
	for _, id := range []string{ids[0], ids[2], fourth, other} {
		if _, err := m.Load(ctx, request(id), false); err != nil {
			t.Errorf("session kept under the cap: %v", err)
		}
	}
	if _, err := m.Load(ctx, request(ids[1]), false); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("least recently used session: %v, want ended", err)
	}
	live, err := m.List(ctx, store.Filter{Issuer: "https://op", Subject: "alice"})
	if err != nil || len(live) != 3 {
		t.Errorf("alice holds %d sessions (%v), want 3", len(live), err)
	}
}

// afterGet runs hook once, right after the next Get returns: another
// request saving the session between this request's read and its slide.
type afterGet struct {
	store.Store
	hook func()
}

func (a *afterGet) Get(ctx context.Context, key string) (*store.Record, error) {
	rec, err := a.Store.Get(ctx, key)
	if h := a.hook; h != nil {
		a.hook = nil
		h()
	}
	return rec, err
}

// TestSlideKeepsTokensSavedMeanwhile: a load that slides the deadline
// writes back no stale tokens when a refresh saved new ones after the load
// read the record.
func TestSlideKeepsTokensSavedMeanwhile(t *testing.T) {
	c := testkit.NewClock(time.Unix(1_800_000_000, 0))
	mem := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
	t.Cleanup(func() { mem.Close() })
	st := &afterGet{Store: mem}
	m, err := session.NewManager(session.Options{
		Store: st, Ring: seal.Ephemeral(), CookieName: "__Host-test",
		IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := m.Create(ctx, &session.Session{Issuer: "iss", Subject: "alice", Tokens: session.Tokens{RefreshToken: "rt-1"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(5 * time.Minute) // due for a slide
	st.hook = func() {
		s, err := m.LoadKey(ctx, session.KeyOf(id), false)
		if err != nil {
			t.Fatal(err)
		}
		s.Tokens.RefreshToken = "rt-2"
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Load(ctx, request(id), true); err != nil {
		t.Fatal(err)
	}
	s, err := m.LoadKey(ctx, session.KeyOf(id), false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Tokens.RefreshToken != "rt-2" {
		t.Fatalf("refresh token after a slide raced a save = %q; want rt-2 (the saved one)", s.Tokens.RefreshToken)
	}
	if !s.LastSeen.Equal(c.Now()) {
		t.Errorf("LastSeen = %v; want the slide's %v", s.LastSeen, c.Now())
	}
}

func TestKeyOfIsTheCookieValuesSHA256(t *testing.T) {
	for _, v := range []string{"", "abc", strings.Repeat("v", 128), strings.Repeat("w", 129), strings.Repeat("x", 4000)} {
		sum := sha256.Sum256([]byte(v))
		if got, want := session.KeyOf(v), base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("KeyOf(%d bytes) = %q, want %q", len(v), got, want)
		}
	}
	v := session.NewID()
	if n := testing.AllocsPerRun(100, func() { session.KeyOf(v) }); n > 1 {
		t.Errorf("KeyOf allocates %v times, want 1 (the key)", n)
	}
}
