package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/admin"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

const (
	issuer = "https://idp.example"
	token  = "s3cret-admin-token"
)

// failing is a store whose listing and deleting fail.
type failing struct{ store.Store }

var errDown = errors.New("store down")

func (failing) List(context.Context, store.Filter) ([]*store.Record, error) {
	return nil, errDown
}
func (failing) DeleteMatching(context.Context, store.Filter) ([]string, error) {
	return nil, errDown
}

type fixture struct {
	t     *testing.T
	clock *testkit.Clock
	m     *session.Manager
	svc   *admin.Service
}

func newFixture(t *testing.T, wrap func(store.Store) store.Store) *fixture {
	t.Helper()
	c := testkit.NewClock(time.Unix(1_800_000_000, 0))
	st := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
	t.Cleanup(func() { st.Close() })
	var st2 store.Store = st
	if wrap != nil {
		st2 = wrap(st)
	}
	m, err := session.NewManager(session.Options{
		Store: st2, Ring: seal.Ephemeral(), CookieName: "__Host-test",
		IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, clock: c, m: m, svc: admin.NewService(m)}
}

// login creates a session and returns its cookie value and handle.
func (f *fixture) login(iss, sub, sid string) (string, string) {
	f.t.Helper()
	s := &session.Session{Issuer: iss, Subject: sub, SID: sid, UserAgent: "agent of " + sub,
		Tokens: session.Tokens{AccessToken: "at-" + sub, RefreshToken: "rt-" + sub}}
	id, err := f.m.Create(context.Background(), s)
	if err != nil {
		f.t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	return id, s.Handle
}

func (f *fixture) alive(id string) bool {
	_, err := f.m.LoadKey(context.Background(), session.KeyOf(id), false)
	return err == nil
}

func (f *fixture) handler(tok string, iss func(context.Context) (string, error)) http.Handler {
	f.t.Helper()
	if iss == nil {
		iss = func(context.Context) (string, error) { return issuer, nil }
	}
	h, err := admin.NewHandler(admin.HandlerOptions{
		Targets: func() []admin.Target { return []admin.Target{{Service: f.svc, Issuer: iss}} },
		Token:   tok,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

func call(h http.Handler, method, target, remote, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServiceListsSubjectsSessionsOfIssuer(t *testing.T) {
	f := newFixture(t, nil)
	_, h1 := f.login(issuer, "alice", "sid-1")
	_, h2 := f.login(issuer, "alice", "")
	f.login(issuer, "bob", "sid-1")
	f.login("https://other.example", "alice", "sid-9")
	list, err := f.svc.List(context.Background(), issuer, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var handles []string
	for _, s := range list {
		handles = append(handles, s.Handle)
	}
	if want := []string{h2, h1}; !slices.Equal(handles, want) {
		t.Fatalf("handles = %v, want %v (newest first, this issuer only)", handles, want)
	}
	first := time.Unix(1_800_000_000, 0)
	want := admin.SessionInfo{Handle: h1, Subject: "alice", SID: "sid-1", CreatedAt: first, LastSeen: first,
		ExpiresAt: first.Add(10 * time.Minute), UserAgent: "agent of alice"}
	if got := list[1]; got.Handle != want.Handle || got.Subject != want.Subject || got.SID != want.SID ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.LastSeen.Equal(want.LastSeen) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.UserAgent != want.UserAgent {
		t.Errorf("entry = %+v, want %+v", got, want)
	}
	if list, err := f.svc.List(context.Background(), issuer, "nobody"); err != nil || list == nil || len(list) != 0 {
		t.Errorf("List(nobody) = %v, %v; want an empty slice", list, err)
	}
}

func TestServiceEnds(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	a1, ha1 := f.login(issuer, "alice", "sid-1")
	a2, _ := f.login(issuer, "alice", "sid-2")
	b1, _ := f.login(issuer, "bob", "sid-1")
	b2, hb2 := f.login(issuer, "bob", "sid-3")
	other, _ := f.login("https://other.example", "alice", "sid-1")

	if n, err := f.svc.EndSID(ctx, issuer, "sid-1"); n != 2 || err != nil {
		t.Errorf("EndSID = %d, %v; want 2", n, err)
	}
	if f.alive(a1) || f.alive(b1) || !f.alive(a2) || !f.alive(b2) || !f.alive(other) {
		t.Error("EndSID ended the wrong sessions")
	}
	if ok, err := f.svc.EndHandle(ctx, issuer, "alice", ha1); ok || err != nil {
		t.Errorf("EndHandle of an ended session = %v, %v; want false", ok, err)
	}
	if ok, err := f.svc.EndHandle(ctx, issuer, "alice", hb2); ok || err != nil || !f.alive(b2) {
		t.Errorf("EndHandle of another subject's handle = %v, %v; want false and the session kept", ok, err)
	}
	if ok, err := f.svc.EndHandle(ctx, issuer, "bob", hb2); !ok || err != nil || f.alive(b2) {
		t.Errorf("EndHandle = %v, %v; want true and the session ended", ok, err)
	}
	if n, err := f.svc.EndSubject(ctx, issuer, "alice"); n != 1 || err != nil {
		t.Errorf("EndSubject = %d, %v; want 1", n, err)
	}
	if f.alive(a2) || !f.alive(other) {
		t.Error("EndSubject ended the wrong sessions")
	}
	if n, err := f.svc.EndSubject(ctx, issuer, "alice"); n != 0 || err != nil {
		t.Errorf("EndSubject again = %d, %v; want 0 and no error", n, err)
	}
	for name, err := range map[string]error{
		"EndSubject": func() error { _, err := f.svc.EndSubject(ctx, issuer, ""); return err }(),
		"EndSID":     func() error { _, err := f.svc.EndSID(ctx, issuer, ""); return err }(),
		"EndHandle":  func() error { _, err := f.svc.EndHandle(ctx, issuer, "alice", ""); return err }(),
		"List":       func() error { _, err := f.svc.List(ctx, "", "alice"); return err }(),
	} {
		if !errors.Is(err, admin.ErrMissingArgument) {
			t.Errorf("%s with an empty argument = %v, want ErrMissingArgument", name, err)
		}
	}
	if !f.alive(other) {
		t.Error("a session of another issuer was ended")
	}
}

func TestHandlerAuthentication(t *testing.T) {
	f := newFixture(t, nil)
	withToken := f.handler(token, nil)
	noToken := f.handler("", nil)
	tests := []struct {
		name         string
		h            http.Handler
		remote, auth string
		want         int
	}{
		{"token configured, none sent", withToken, "192.0.2.1:4000", "", http.StatusUnauthorized},
		{"token configured, none sent from loopback", withToken, "127.0.0.1:4000", "", http.StatusUnauthorized},
		{"wrong token", withToken, "127.0.0.1:4000", "Bearer wrong", http.StatusUnauthorized},
		{"token prefix", withToken, "127.0.0.1:4000", "Bearer " + token[:5], http.StatusUnauthorized},
		{"token with extra", withToken, "127.0.0.1:4000", "Bearer " + token + "x", http.StatusUnauthorized},
		{"basic scheme", withToken, "127.0.0.1:4000", "Basic " + token, http.StatusUnauthorized},
		{"right token", withToken, "192.0.2.1:4000", "Bearer " + token, http.StatusOK},
		{"scheme in lower case", withToken, "192.0.2.1:4000", "bearer " + token, http.StatusOK},
		{"no token configured, remote caller", noToken, "192.0.2.1:4000", "", http.StatusUnauthorized},
		{"no token configured, remote caller with a token", noToken, "192.0.2.1:4000", "Bearer " + token, http.StatusUnauthorized},
		{"no token configured, IPv4 loopback", noToken, "127.0.0.1:4000", "", http.StatusOK},
		{"no token configured, IPv6 loopback", noToken, "[::1]:4000", "", http.StatusOK},
		{"no token configured, mapped loopback", noToken, "[::ffff:127.0.0.1]:4000", "", http.StatusOK},
		{"no token configured, unparsable remote", noToken, "pipe", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := call(tt.h, "GET", "/admin/sessions?sub=alice", tt.remote, tt.auth)
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			if w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestHandlerRefusesBeforeEnding(t *testing.T) {
	f := newFixture(t, nil)
	id, _ := f.login(issuer, "alice", "sid-1")
	h := f.handler(token, nil)
	for _, auth := range []string{"", "Bearer wrong"} {
		if w := call(h, "DELETE", "/admin/sessions?sub=alice", "127.0.0.1:1", auth); w.Code != http.StatusUnauthorized {
			t.Errorf("auth %q: status = %d, want 401", auth, w.Code)
		}
	}
	if w := call(f.handler("", nil), "DELETE", "/admin/sessions?sid=sid-1", "192.0.2.1:1", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("remote without token: status = %d, want 401", w.Code)
	}
	if !f.alive(id) {
		t.Error("an unauthorised request ended a session")
	}
}

func TestHandlerListsAndEnds(t *testing.T) {
	f := newFixture(t, nil)
	a1, ha1 := f.login(issuer, "alice", "sid-1")
	a2, ha2 := f.login(issuer, "alice", "sid-2")
	a3, ha3 := f.login(issuer, "alice", "sid-3")
	b1, _ := f.login(issuer, "bob", "sid-1")
	h := f.handler(token, nil)
	auth := "Bearer " + token

	w := call(h, "GET", "/admin/sessions?sub=alice", "", auth)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("list: status = %d, type %q", w.Code, w.Header().Get("Content-Type"))
	}
	for _, secret := range []string{a1, a2, "at-alice", "rt-alice", session.KeyOf(a1)} {
		if strings.Contains(w.Body.String(), secret) {
			t.Errorf("the list shows %q", secret)
		}
	}
	var list []admin.SessionInfo
	json.Unmarshal(w.Body.Bytes(), &list)
	var handles []string
	for _, s := range list {
		handles = append(handles, s.Handle)
	}
	if want := []string{ha3, ha2, ha1}; !slices.Equal(handles, want) {
		t.Fatalf("listed %v, want %v", handles, want)
	}

	ended := func(w *httptest.ResponseRecorder) int {
		t.Helper()
		var e admin.Ended
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &e) != nil {
			t.Fatalf("status = %d: %s", w.Code, w.Body)
		}
		return e.Ended
	}
	if n := ended(call(h, "DELETE", "/admin/sessions?sid=sid-1", "", auth)); n != 2 || f.alive(a1) || f.alive(b1) || !f.alive(a2) {
		t.Errorf("end by sid: ended %d, want 2 (alice's and bob's sid-1)", n)
	}
	if n := ended(call(h, "DELETE", "/admin/sessions?sub=alice&handle="+ha2, "", auth)); n != 1 || f.alive(a2) || !f.alive(a3) {
		t.Errorf("end by handle: ended %d, want 1", n)
	}
	if w := call(h, "DELETE", "/admin/sessions?sub=alice&handle="+ha2, "", auth); w.Code != http.StatusNotFound {
		t.Errorf("end an ended handle: status = %d, want 404", w.Code)
	}
	if n := ended(call(h, "DELETE", "/admin/sessions?sub=alice", "", auth)); n != 1 || f.alive(a3) {
		t.Errorf("end by sub: ended %d, want 1", n)
	}
	if n := ended(call(h, "DELETE", "/admin/sessions?sub=alice", "", auth)); n != 0 {
		t.Errorf("end by sub again: ended %d, want 0", n)
	}
}

func TestHandlerRejectsBadRequests(t *testing.T) {
	f := newFixture(t, nil)
	id, _ := f.login(issuer, "alice", "sid-1")
	h := f.handler(token, nil)
	tests := []struct {
		name, method, target string
		want                 int
	}{
		{"list without sub", "GET", "/admin/sessions", http.StatusBadRequest},
		{"list by sid", "GET", "/admin/sessions?sid=sid-1", http.StatusBadRequest},
		{"end without selector", "DELETE", "/admin/sessions", http.StatusBadRequest},
		{"end by sub and sid", "DELETE", "/admin/sessions?sub=alice&sid=sid-1", http.StatusBadRequest},
		{"handle without sub", "DELETE", "/admin/sessions?sid=sid-1&handle=x", http.StatusBadRequest},
		{"post", "POST", "/admin/sessions?sub=alice", http.StatusMethodNotAllowed},
		{"other path", "GET", "/admin/sessions/x?sub=alice", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := call(h, tt.method, tt.target, "", "Bearer "+token)
			if w.Code != tt.want {
				t.Errorf("status = %d, want %d: %s", w.Code, tt.want, w.Body)
			}
		})
	}
	if !f.alive(id) {
		t.Error("a rejected request ended a session")
	}
}

func TestHandlerFailures(t *testing.T) {
	auth := "Bearer " + token
	noIssuer := func(context.Context) (string, error) { return "", errors.New("discovery failed") }
	f := newFixture(t, nil)
	if w := call(f.handler(token, noIssuer), "DELETE", "/admin/sessions?sub=alice", "", auth); w.Code != http.StatusServiceUnavailable {
		t.Errorf("without an issuer: status = %d, want 503", w.Code)
	}
	down := newFixture(t, func(s store.Store) store.Store { return failing{s} })
	for _, method := range []string{"GET", "DELETE"} {
		w := call(down.handler(token, nil), method, "/admin/sessions?sub=alice", "", auth)
		if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), errDown.Error()) {
			t.Errorf("%s with a failing store: status = %d, body %s; want 503 without the internal error", method, w.Code, w.Body)
		}
	}
}

func TestHandlerOverLoopbackWithoutToken(t *testing.T) {
	f := newFixture(t, nil)
	f.login(issuer, "alice", "")
	srv := httptest.NewServer(f.handler("", nil))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/admin/sessions?sub=alice")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("status over loopback = %d, want 200", res.StatusCode)
	}
}

func TestNewHandlerRequiresTargets(t *testing.T) {
	if _, err := admin.NewHandler(admin.HandlerOptions{Token: "t"}); err == nil {
		t.Error("a handler without targets was built")
	}
}

// TestHandlerActsPerApp: with app= the operator API acts on that app's
// sessions only; without it, on every app's.
func TestHandlerActsPerApp(t *testing.T) {
	shop, admins := newFixture(t, nil), newFixture(t, nil)
	iss := func(context.Context) (string, error) { return issuer, nil }
	h, err := admin.NewHandler(admin.HandlerOptions{Token: token, Targets: func() []admin.Target {
		return []admin.Target{{App: "shop", Service: shop.svc, Issuer: iss}, {App: "admin", Service: admins.svc, Issuer: iss}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + token
	s1, _ := shop.login(issuer, "alice", "")
	a1, _ := admins.login(issuer, "alice", "")
	w := call(h, "GET", "/admin/sessions?sub=alice", "", auth)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"app":"shop"`) || !strings.Contains(w.Body.String(), `"app":"admin"`) {
		t.Fatalf("list over all apps: %d %s", w.Code, w.Body)
	}
	if w := call(h, "DELETE", "/admin/sessions?sub=alice&app=shop", "", auth); w.Code != 200 || !strings.Contains(w.Body.String(), `"ended":1`) {
		t.Fatalf("end in app shop: %d %s", w.Code, w.Body)
	}
	if shop.alive(s1) || !admins.alive(a1) {
		t.Fatal("app=shop did not end exactly the shop session")
	}
	if w := call(h, "DELETE", "/admin/sessions?sub=alice&app=nope", "", auth); w.Code != 404 {
		t.Fatalf("unknown app: %d", w.Code)
	}
	if w := call(h, "DELETE", "/admin/sessions?sub=alice", "", auth); w.Code != 200 || admins.alive(a1) {
		t.Fatalf("end in every app: %d %s", w.Code, w.Body)
	}
}

func TestListenCheck(t *testing.T) {
	tests := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:9090", "", true},
		{"[::1]:9090", "", true},
		{"localhost:9090", "", true},
		{"127.0.0.2:9090", "", true},
		{"0.0.0.0:9090", "", false},
		{":9090", "", false},
		{"[::]:9090", "", false},
		{"10.0.0.5:9090", "", false},
		{"admin.example.com:9090", "", false},
		{"0.0.0.0:9090", token, true},
		{":9090", token, true},
		{"no-port", token, false},
	}
	for _, tt := range tests {
		err := admin.ListenCheck(tt.addr, tt.token)
		if (err == nil) != tt.ok {
			t.Errorf("ListenCheck(%q, token set %v) = %v, want ok %v", tt.addr, tt.token != "", err, tt.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "admin: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
}

func TestBoundCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := admin.BoundCheck(ln, ""); err != nil {
		t.Errorf("loopback listener refused: %v", err)
	}
	if err := admin.BoundCheck(fakeListener{"192.0.2.7:9090"}, ""); err == nil {
		t.Error("a listener on a routable address without a token was accepted")
	}
	if err := admin.BoundCheck(fakeListener{"192.0.2.7:9090"}, "tok"); err != nil {
		t.Errorf("with a token: %v", err)
	}
}

type fakeListener struct{ addr string }

func (fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (fakeListener) Close() error              { return nil }
func (f fakeListener) Addr() net.Addr          { return addrString(f.addr) }

type addrString string

func (addrString) Network() string  { return "tcp" }
func (a addrString) String() string { return string(a) }
