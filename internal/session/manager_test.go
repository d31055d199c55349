package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newManager(t *testing.T) (*session.Manager, *memstore.Store, *clock) {
	t.Helper()
	c := &clock{now: time.Unix(1_800_000_000, 0)}
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
	c.now = c.now.Add(10 * time.Minute)
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
