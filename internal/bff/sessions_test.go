package bff_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/bff"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/internal/tokens"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

const (
	issuer = "https://idp.example"
	cookie = "__Host-test"
)

type fixture struct {
	t     *testing.T
	clock *testkit.Clock
	m     *session.Manager
	h     *bff.Handler
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := testkit.NewClock(time.Unix(1_800_000_000, 0))
	st := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
	t.Cleanup(func() { st.Close() })
	m, err := session.NewManager(session.Options{
		Store: st, Ring: seal.Ephemeral(), CookieName: cookie,
		IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := bff.New(bff.Options{
		Prefix: "/bff",
		// Never contacted by the session endpoints.
		Provider: provider.NewSource(provider.Options{Issuer: "http://127.0.0.1:1"}, 0),
		Sessions: m,
		Tokens:   tokens.New(tokens.Options{Sessions: m}),
		CSRF: func(r *http.Request) error {
			if r.Header.Get("X-CSRF") != "1" {
				return errors.New("missing X-CSRF")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, clock: c, m: m, h: h}
}

// login creates a session and returns its cookie value and handle.
func (f *fixture) login(sub, sid, agent string) (string, string) {
	f.t.Helper()
	s := &session.Session{Issuer: issuer, Subject: sub, SID: sid, UserAgent: agent,
		Claims: map[string]any{"sub": sub, "email": sub + "@example.com"},
		Tokens: session.Tokens{AccessToken: "at-" + sub + agent, RefreshToken: "rt-" + sub + agent}}
	id, err := f.m.Create(context.Background(), s)
	if err != nil {
		f.t.Fatal(err)
	}
	return id, s.Handle
}

func (f *fixture) alive(id string) bool {
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: cookie, Value: id})
	_, err := f.m.Load(context.Background(), r, false)
	return err == nil
}

func (f *fixture) do(method, path, id string, csrf bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if id != "" {
		r.AddCookie(&http.Cookie{Name: cookie, Value: id})
	}
	if csrf {
		r.Header.Set("X-CSRF", "1")
	}
	w := httptest.NewRecorder()
	f.h.Sessions(w, r)
	return w
}

func TestSessionsListsOwnSessionsNewestFirst(t *testing.T) {
	f := newFixture(t)
	idA, hA := f.login("alice", "sid-1", "Firefox on Linux")
	f.clock.Advance(time.Minute)
	idB, hB := f.login("alice", "sid-2", "Safari on iOS")
	f.clock.Advance(time.Minute)
	_, hC := f.login("alice", "", "Chrome on Windows")
	idBob, hBob := f.login("bob", "sid-3", "Edge")
	f.clock.Advance(time.Minute)

	w := f.do("GET", "/bff/sessions", idB, true)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	body := w.Body.String()
	for _, secret := range []string{idA, idB, idBob, hBob, "at-alice", "rt-alice", "alice@example.com", "sid-1", issuer} {
		if strings.Contains(body, secret) {
			t.Errorf("the session list shows %q", secret)
		}
	}
	var raw []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	allowed := []string{"handle", "created_at", "last_seen", "expires_at", "user_agent", "current"}
	for _, e := range raw {
		for k := range e {
			if !slices.Contains(allowed, k) {
				t.Errorf("entry has field %q", k)
			}
		}
	}
	var list []bff.SessionInfo
	json.Unmarshal(w.Body.Bytes(), &list)
	var got []string
	for _, e := range list {
		got = append(got, e.Handle)
		if e.Current != (e.Handle == hB) {
			t.Errorf("session %s: current = %v", e.Handle, e.Current)
		}
	}
	if want := []string{hC, hB, hA}; !slices.Equal(got, want) {
		t.Fatalf("handles = %v, want %v (newest first)", got, want)
	}
	c := list[0]
	created := time.Unix(1_800_000_000, 0).Add(2 * time.Minute)
	if c.UserAgent != "Chrome on Windows" || !c.CreatedAt.Equal(created) || !c.LastSeen.Equal(created) || !c.ExpiresAt.Equal(created.Add(10*time.Minute)) {
		t.Errorf("newest entry = %+v", c)
	}
}

func TestSessionsLeavesOutExpiredSessions(t *testing.T) {
	f := newFixture(t)
	_, hOld := f.login("alice", "", "old")
	f.clock.Advance(9 * time.Minute)
	id, hNew := f.login("alice", "", "new")
	f.clock.Advance(2 * time.Minute)
	w := f.do("GET", "/bff/sessions", id, true)
	var list []bff.SessionInfo
	json.Unmarshal(w.Body.Bytes(), &list)
	if len(list) != 1 || list[0].Handle != hNew {
		t.Errorf("list = %+v; want only %s, not the idle-expired %s", list, hNew, hOld)
	}
}

func TestSessionsEndsAnotherOwnSession(t *testing.T) {
	f := newFixture(t)
	idA, hA := f.login("alice", "", "a")
	idB, _ := f.login("alice", "", "b")
	w := f.do("DELETE", "/bff/sessions/"+hA, idB, true)
	if w.Code != http.StatusNoContent {
		t.Fatalf("status = %d, want 204: %s", w.Code, w.Body)
	}
	if f.alive(idA) {
		t.Error("the ended session still loads")
	}
	if !f.alive(idB) {
		t.Error("the current session was ended too")
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("ending another session touched the current cookie")
	}
	if w := f.do("DELETE", "/bff/sessions/"+hA, idB, true); w.Code != http.StatusNotFound {
		t.Errorf("ending it again: status = %d, want 404", w.Code)
	}
}

func TestSessionsEndsCurrentSessionAndClearsCookie(t *testing.T) {
	f := newFixture(t)
	id, h := f.login("alice", "", "a")
	w := f.do("DELETE", "/bff/sessions/"+h, id, true)
	if w.Code != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", w.Code)
	}
	if f.alive(id) {
		t.Error("the current session still loads")
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != cookie || cs[0].MaxAge >= 0 {
		t.Errorf("cookies = %v, want the session cookie cleared", cs)
	}
}

func TestSessionsCannotEndSomeoneElses(t *testing.T) {
	f := newFixture(t)
	idA, _ := f.login("alice", "", "a")
	idBob, hBob := f.login("bob", "", "b")
	other := f.do("DELETE", "/bff/sessions/"+hBob, idA, true)
	unknown := f.do("DELETE", "/bff/sessions/"+session.NewID()[:22], idA, true)
	for name, w := range map[string]*httptest.ResponseRecorder{"other user's": other, "unknown": unknown} {
		if w.Code != http.StatusNotFound {
			t.Errorf("%s handle: status = %d, want 404", name, w.Code)
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(w.Body.Bytes(), &e); e.Error != "not_found" {
			t.Errorf("%s handle: body %s", name, w.Body)
		}
	}
	if !f.alive(idBob) {
		t.Error("another user's session was ended")
	}
	// The same subject at another issuer is someone else too.
	s := &session.Session{Issuer: "https://other-idp.example", Subject: "alice"}
	idOther, err := f.m.Create(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if w := f.do("DELETE", "/bff/sessions/"+s.Handle, idA, true); w.Code != http.StatusNotFound {
		t.Errorf("other issuer's handle: status = %d, want 404", w.Code)
	}
	if !f.alive(idOther) {
		t.Error("a session of another issuer was ended")
	}
}

func TestSessionsEndsAllButCurrent(t *testing.T) {
	f := newFixture(t)
	idA, _ := f.login("alice", "", "a")
	idB, _ := f.login("alice", "", "b")
	idC, _ := f.login("alice", "", "c")
	idBob, _ := f.login("bob", "", "d")
	w := f.do("DELETE", "/bff/sessions", idB, true)
	if w.Code != http.StatusNoContent {
		t.Fatalf("status = %d, want 204: %s", w.Code, w.Body)
	}
	for id, want := range map[string]bool{idA: false, idB: true, idC: false, idBob: true} {
		if f.alive(id) != want {
			t.Errorf("session alive = %v, want %v", !want, want)
		}
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("the current cookie was touched")
	}
}

func TestSessionsRefusals(t *testing.T) {
	f := newFixture(t)
	idA, hA := f.login("alice", "", "a")
	idB, _ := f.login("alice", "", "b")
	tests := []struct {
		name, method, path, id string
		csrf                   bool
		want                   int
	}{
		{"list without csrf header", "GET", "/bff/sessions", idB, false, http.StatusForbidden},
		{"end one without csrf header", "DELETE", "/bff/sessions/" + hA, idB, false, http.StatusForbidden},
		{"end others without csrf header", "DELETE", "/bff/sessions", idB, false, http.StatusForbidden},
		{"list without session", "GET", "/bff/sessions", "", true, http.StatusUnauthorized},
		{"end without session", "DELETE", "/bff/sessions/" + hA, "", true, http.StatusUnauthorized},
		{"list with unknown cookie", "GET", "/bff/sessions", session.NewID(), true, http.StatusUnauthorized},
		{"post to the list", "POST", "/bff/sessions", idB, true, http.StatusMethodNotAllowed},
		{"get one", "GET", "/bff/sessions/" + hA, idB, true, http.StatusMethodNotAllowed},
		{"path beyond a handle", "DELETE", "/bff/sessions/" + hA + "/x", idB, true, http.StatusNotFound},
		{"empty handle", "DELETE", "/bff/sessions/", idB, true, http.StatusNotFound},
		{"other path", "GET", "/bff/sessionsx", idB, true, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(tt.method, tt.path, tt.id, tt.csrf)
			if w.Code != tt.want {
				t.Errorf("status = %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want JSON", ct)
			}
		})
	}
	if !f.alive(idA) || !f.alive(idB) {
		t.Error("a refused request ended a session")
	}
}
