package backchannel

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

const (
	clientID     = "gatehouse"
	clientSecret = "a-client-secret-that-is-at-least-32-bytes"
	otherUser    = "user-2"
)

type env struct {
	t     *testing.T
	clk   *testkit.Clock
	op    *hostileop.Provider
	store store.Store
	mgr   *session.Manager
	h     *Handler
	log   *bytes.Buffer

	mu    sync.Mutex
	ended [][]string
}

func newEnv(t *testing.T, allSessions bool) *env {
	t.Helper()
	e := &env{t: t, clk: testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), log: new(bytes.Buffer)}
	e.op = hostileop.New(t, hostileop.WithClient(clientID, clientSecret))
	e.op.SetClock(e.clk.Now)
	e.store = memstore.New(memstore.Options{Now: e.clk.Now, SweepInterval: -1})
	t.Cleanup(func() { e.store.Close() })
	var err error
	e.mgr, err = session.NewManager(session.Options{
		Store: e.store, Ring: seal.Ephemeral(), CookieName: "__Host-gatehouse",
		IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour, Now: e.clk.Now,
		OnEnd: func(_ context.Context, keys []string, reason string) {
			if reason != Reason {
				t.Errorf("OnEnd reason %q", reason)
			}
			e.mu.Lock()
			e.ended = append(e.ended, slices.Clone(keys))
			e.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	src := provider.NewSource(provider.Options{
		Issuer: e.op.URL, ClientID: clientID, ClientSecret: clientSecret,
		HTTPClient: e.op.HTTPClient(), Now: e.clk.Now,
	}, 0)
	e.h, err = New(Options{
		Provider: src, Sessions: e.mgr, AllSessions: allSessions, Now: e.clk.Now,
		Logger: slog.New(slog.NewTextHandler(e.log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// login creates a session of issuer iss for sub and sid and returns its
// store key.
func (e *env) login(iss, sub, sid string) string {
	e.t.Helper()
	id, err := e.mgr.Create(context.Background(), &session.Session{Issuer: iss, Subject: sub, SID: sid})
	if err != nil {
		e.t.Fatal(err)
	}
	return session.KeyOf(id)
}

func (e *env) alive(key string) bool {
	_, err := e.mgr.LoadKey(context.Background(), key, false)
	return err == nil
}

func (e *env) serve(req *http.Request) *httptest.ResponseRecorder {
	req = req.WithContext(httpx.WithRequestID(req.Context(), "req-1"))
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func (e *env) post(token string) *httptest.ResponseRecorder {
	body := url.Values{"logout_token": {token}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "/bff/backchannel", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.serve(req)
}

func errorBody(t *testing.T, rec *httptest.ResponseRecorder) httpx.Error {
	t.Helper()
	var body httpx.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	return body
}

func wantOK(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("body %q, want none", rec.Body)
	}
}

func TestInvalidLogoutTokenKeepsSession(t *testing.T) {
	e := newEnv(t, false)
	sid := "sid-1"
	key := e.login(e.op.URL, hostileop.DefaultSubject, sid)
	claims := hostileop.LogoutClaims{Subject: hostileop.DefaultSubject, SessionID: sid}
	defects := append(hostileop.LogoutDefects(),
		hostileop.LogoutHS256([]byte(clientSecret)), hostileop.LogoutTyp("at+jwt"))
	for _, d := range defects {
		t.Run(d.String(), func(t *testing.T) {
			raw := e.op.LogoutToken(claims, d)
			rec := e.post(raw)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", rec.Code, rec.Body)
			}
			if b := errorBody(t, rec); b.Error != "invalid_request" || b.RequestID != "req-1" {
				t.Errorf("error body %+v", b)
			}
			if !e.alive(key) {
				t.Fatal("session ended by an invalid logout token")
			}
			if strings.Contains(e.log.String(), raw) {
				t.Error("the logout token was logged")
			}
		})
	}
	if len(e.ended) != 0 {
		t.Errorf("OnEnd called: %v", e.ended)
	}
}

func TestSIDTokenEndsThatSessionOnly(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(map[bool]string{false: "sid only", true: "all sessions"}[all], func(t *testing.T) {
			e := newEnv(t, all)
			a := e.login(e.op.URL, hostileop.DefaultSubject, "sid-a")
			b := e.login(e.op.URL, hostileop.DefaultSubject, "sid-b")
			other := e.login(e.op.URL, otherUser, "sid-o")
			foreign := e.login(hostileop.OtherIssuer, hostileop.DefaultSubject, "sid-a")

			raw := e.op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject, SessionID: "sid-a"})
			wantOK(t, e.post(raw))
			if e.alive(a) {
				t.Error("the sid's session is alive")
			}
			if e.alive(b) == all {
				t.Errorf("same user's other session alive = %v with AllSessions %v", e.alive(b), all)
			}
			if !e.alive(other) || !e.alive(foreign) {
				t.Error("another user's or issuer's session ended")
			}
			want := []string{a}
			if all {
				want = []string{a, b}
			}
			if ended := slices.Concat(e.ended...); !sameKeys(ended, want) {
				t.Errorf("ended keys %v, want %v", ended, want)
			}
			if strings.Contains(e.log.String(), raw) {
				t.Error("the logout token was logged")
			}
		})
	}
}

func TestSubjectTokenEndsAllOfUsersSessions(t *testing.T) {
	e := newEnv(t, false)
	a := e.login(e.op.URL, hostileop.DefaultSubject, "sid-a")
	b := e.login(e.op.URL, hostileop.DefaultSubject, "")
	other := e.login(e.op.URL, otherUser, "sid-o")
	wantOK(t, e.post(e.op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject})))
	if e.alive(a) || e.alive(b) {
		t.Error("a session of the user is alive")
	}
	if !e.alive(other) {
		t.Error("another user's session ended")
	}
}

func TestAlreadyLoggedOutIsSuccess(t *testing.T) {
	e := newEnv(t, false)
	wantOK(t, e.post(e.op.LogoutToken(hostileop.LogoutClaims{SessionID: "sid-gone"})))
	wantOK(t, e.post(e.op.LogoutToken(hostileop.LogoutClaims{Subject: "nobody"})))
	if len(e.ended) != 0 {
		t.Errorf("OnEnd called without sessions: %v", e.ended)
	}
}

func TestReplayedTokenRejected(t *testing.T) {
	e := newEnv(t, false)
	e.login(e.op.URL, hostileop.DefaultSubject, "sid-a")
	raw := e.op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject})
	wantOK(t, e.post(raw))

	// The user signs in again; replaying the token must not end that.
	e.clk.Advance(time.Minute)
	again := e.login(e.op.URL, hostileop.DefaultSubject, "sid-b")
	rec := e.post(raw)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("replay: status %d, want 400", rec.Code)
	}
	if b := errorBody(t, rec); b.Error != "invalid_request" || b.Description != "logout token replayed" {
		t.Errorf("replay body %+v", b)
	}
	if !e.alive(again) {
		t.Error("replayed token ended the new session")
	}

	// The same jti in a freshly signed token is a replay too.
	lc := hostileop.LogoutClaims{Subject: hostileop.DefaultSubject, ID: "jti-fixed"}
	wantOK(t, e.post(e.op.LogoutToken(lc)))
	again = e.login(e.op.URL, hostileop.DefaultSubject, "sid-c")
	if rec := e.post(e.op.LogoutToken(lc)); rec.Code != http.StatusBadRequest {
		t.Fatalf("same jti: status %d, want 400", rec.Code)
	}
	if !e.alive(again) {
		t.Error("token with a used jti ended the new session")
	}
}

func TestTooOldTokenRejected(t *testing.T) {
	e := newEnv(t, false)
	key := e.login(e.op.URL, hostileop.DefaultSubject, "sid-a")
	iat := e.clk.Now().Add(-MaxTokenAge - time.Second)
	raw := e.op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject, Extra: map[string]any{
		"iat": iat.Unix(), "exp": e.clk.Now().Add(time.Hour).Unix()}})
	if rec := e.post(raw); rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", rec.Code)
	}
	if !e.alive(key) {
		t.Error("session ended by a token older than MaxTokenAge")
	}
}

func TestRequestChecks(t *testing.T) {
	e := newEnv(t, false)
	key := e.login(e.op.URL, hostileop.DefaultSubject, "sid-a")
	token := e.op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject})
	form := func(v url.Values) string { return v.Encode() }
	tests := []struct {
		name, method, target, ctype, body string
		want                              int
	}{
		{"GET", http.MethodGet, "/bff/backchannel?" + form(url.Values{"logout_token": {token}}), "", "", http.StatusMethodNotAllowed},
		{"PUT", http.MethodPut, "/bff/backchannel", "application/x-www-form-urlencoded", form(url.Values{"logout_token": {token}}), http.StatusMethodNotAllowed},
		{"JSON body", http.MethodPost, "/bff/backchannel", "application/json", `{"logout_token":"` + token + `"}`, http.StatusBadRequest},
		{"no content type", http.MethodPost, "/bff/backchannel", "", form(url.Values{"logout_token": {token}}), http.StatusBadRequest},
		{"multipart", http.MethodPost, "/bff/backchannel", "multipart/form-data; boundary=x", "--x--", http.StatusBadRequest},
		{"missing parameter", http.MethodPost, "/bff/backchannel", "application/x-www-form-urlencoded", form(url.Values{"token": {token}}), http.StatusBadRequest},
		{"empty parameter", http.MethodPost, "/bff/backchannel", "application/x-www-form-urlencoded", "logout_token=", http.StatusBadRequest},
		{"parameter twice", http.MethodPost, "/bff/backchannel", "application/x-www-form-urlencoded", form(url.Values{"logout_token": {token, token}}), http.StatusBadRequest},
		{"parameter in query only", http.MethodPost, "/bff/backchannel?" + form(url.Values{"logout_token": {token}}), "application/x-www-form-urlencoded", "", http.StatusBadRequest},
		{"malformed form", http.MethodPost, "/bff/backchannel", "application/x-www-form-urlencoded", "logout_token=%zz", http.StatusBadRequest},
		{"body too large", http.MethodPost, "/bff/backchannel", "application/x-www-form-urlencoded", "logout_token=" + strings.Repeat("a", MaxBodyBytes+1), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			rec := e.serve(req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.want, rec.Body)
			}
			if b := errorBody(t, rec); b.Error == "" {
				t.Error("no error code in body")
			}
			if tt.want == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q", rec.Header().Get("Allow"))
			}
			if !e.alive(key) {
				t.Fatal("session ended by a rejected request")
			}
		})
	}
	// The token is still unused and valid.
	wantOK(t, e.post(token))
	if e.alive(key) {
		t.Error("session alive after a valid logout token")
	}
}

func TestForgedKeysDoNotRefetchJWKSEveryTime(t *testing.T) {
	e := newEnv(t, false)
	key := e.login(e.op.URL, hostileop.DefaultSubject, "sid-a")
	wantOK(t, e.post(e.op.LogoutToken(hostileop.LogoutClaims{SessionID: "sid-x"})))
	fetches := e.op.Stats().JWKSFetches

	// A bad signature under a published key never refetches.
	for range 5 {
		if rec := e.post(e.op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject}, hostileop.LogoutBadSignature)); rec.Code != http.StatusBadRequest {
			t.Fatalf("bad signature: status %d, want 400", rec.Code)
		}
	}
	if got := e.op.Stats().JWKSFetches; got != fetches {
		t.Errorf("bad signatures under a known key caused %d JWKS fetches, want 0", got-fetches)
	}
	// Unknown key ids refetch at a bounded rate, not once per request.
	for range 20 {
		if rec := e.post(e.op.LogoutToken(hostileop.LogoutClaims{Subject: hostileop.DefaultSubject}, hostileop.LogoutUnknownKey)); rec.Code != http.StatusBadRequest {
			t.Fatalf("unknown key: status %d, want 400", rec.Code)
		}
	}
	if got := e.op.Stats().JWKSFetches - fetches; got > 3 {
		t.Errorf("20 forged-kid tokens caused %d JWKS fetches, want a bounded few", got)
	}
	if !e.alive(key) {
		t.Fatal("session ended by a forged token")
	}
	// Tokens under the known key are not held back by the limit.
	wantOK(t, e.post(e.op.LogoutToken(hostileop.LogoutClaims{SessionID: "sid-a"})))
	if e.alive(key) {
		t.Error("valid token did not end the session while forged keys were limited")
	}
}

func TestRotatedKeyAccepted(t *testing.T) {
	e := newEnv(t, false)
	a := e.login(e.op.URL, hostileop.DefaultSubject, "sid-a")
	wantOK(t, e.post(e.op.LogoutToken(hostileop.LogoutClaims{SessionID: "sid-a"})))
	if e.alive(a) {
		t.Fatal("first token did not end its session")
	}
	e.op.RotateKeys()
	b := e.login(e.op.URL, hostileop.DefaultSubject, "sid-b")
	wantOK(t, e.post(e.op.LogoutToken(hostileop.LogoutClaims{SessionID: "sid-b"})))
	if e.alive(b) {
		t.Error("token signed with the rotated key did not end the session")
	}
}

func TestNewChecksOptions(t *testing.T) {
	e := newEnv(t, false)
	src := provider.NewSource(provider.Options{Issuer: "http://127.0.0.1:1"}, 0)
	for _, o := range []Options{
		{Sessions: e.mgr},
		{Provider: src},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted incomplete options", o)
		}
	}
	if _, err := New(Options{Provider: src, Sessions: e.mgr}); err != nil {
		t.Errorf("New: %v", err)
	}
}

func sameKeys(got, want []string) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}
