package login

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

const (
	stepClientID     = "gatehouse-login-test"
	stepClientSecret = "login-test-client-secret-0123456789-abcdef"
	cookieName       = "__Host-gatehouse"
	mfa              = "urn:example:mfa"
)

// stepEnv is a login handler on a TLS loopback server against the hostile
// provider, with the step-up values a route configuration would allow.
type stepEnv struct {
	t   *testing.T
	op  *hostileop.Provider
	srv *httptest.Server
	mgr *session.Manager
	c   *http.Client

	mu    sync.Mutex
	ended []string // reasons, in order
}

func newStepEnv(t *testing.T) *stepEnv {
	t.Helper()
	var op *hostileop.Provider
	e := newStepEnvWith(t, func(callback string) string {
		op = hostileop.New(t, hostileop.WithClient(stepClientID, stepClientSecret, callback),
			hostileop.WithUser("alice", map[string]any{"name": "Alice"}))
		return op.URL
	})
	e.op = op
	return e
}

// newStepEnvWith starts the login handler against the provider that
// startProvider starts for the callback URL; it returns the issuer.
func newStepEnvWith(t *testing.T, startProvider func(callback string) string) *stepEnv {
	t.Helper()
	e := &stepEnv{t: t, srv: httptest.NewUnstartedServer(nil)}
	t.Cleanup(e.srv.Close)
	callback := "https://" + e.srv.Listener.Addr().String() + "/bff/callback"
	issuer := startProvider(callback)
	store := memstore.New(memstore.Options{SweepInterval: -1})
	t.Cleanup(func() { store.Close() })
	var err error
	e.mgr, err = session.NewManager(session.Options{Store: store, Ring: seal.Ephemeral(), CookieName: cookieName,
		IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour,
		OnEnd: func(_ context.Context, keys []string, reason string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			for range keys {
				e.ended = append(e.ended, reason)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	src := provider.NewSource(provider.Options{Issuer: issuer, ClientID: stepClientID, ClientSecret: stepClientSecret,
		RedirectURL: callback, Scopes: []string{"openid", "profile"}, HTTPClient: &http.Client{Timeout: 10 * time.Second}}, time.Second)
	h, err := New(Options{Provider: src, Sessions: e.mgr, Ring: seal.Ephemeral(),
		AllowedACR: []string{mfa, "urn:example:hwk"}, AllowedMaxAge: []time.Duration{15 * time.Minute, 0}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/bff/login", h.Login)
	mux.HandleFunc("/bff/callback", h.Callback)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("app")) })
	e.srv.Config.Handler = mux
	e.srv.StartTLS()
	jar, _ := cookiejar.New(nil)
	e.c = &http.Client{Jar: jar, Transport: e.srv.Client().Transport, Timeout: 10 * time.Second}
	return e
}

// get follows a navigation to its end and returns the final URL.
func (e *stepEnv) get(path string) (*http.Response, *url.URL) {
	e.t.Helper()
	resp, err := e.c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp, resp.Request.URL
}

func (e *stepEnv) cookie() string {
	u, _ := url.Parse(e.srv.URL)
	for _, c := range e.c.Jar.Cookies(u) {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

// session loads the session a cookie value names, or nil.
func (e *stepEnv) session(value string) *session.Session {
	s, err := e.mgr.LoadKey(e.t.Context(), session.KeyOf(value), false)
	if err != nil {
		return nil
	}
	return s
}

func (e *stepEnv) endReasons() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ended)
}

// signIn does a plain login and returns the session cookie value.
func (e *stepEnv) signIn() string {
	e.t.Helper()
	if resp, u := e.get("/bff/login?returnUrl=%2Fhome"); resp.StatusCode != http.StatusOK || u.Path != "/home" {
		e.t.Fatalf("login ended with %d at %s", resp.StatusCode, u)
	}
	v := e.cookie()
	if e.session(v) == nil {
		e.t.Fatal("no session after login")
	}
	return v
}

const stepUpPath = "/bff/login?acr_values=urn%3Aexample%3Amfa&max_age=900&returnUrl=%2Fpay"

func TestStepUpAsksOnlyForRequiredValues(t *testing.T) {
	e := newStepEnv(t)
	c := *e.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"acr_values=urn%3Aexample%3Amfa&max_age=900", http.StatusFound},
		{"acr_values=urn%3Aexample%3Amfa+urn%3Aexample%3Ahwk", http.StatusFound},
		{"max_age=0", http.StatusFound},
		{"acr_values=&max_age=", http.StatusFound},
		{"acr_values=urn%3Aexample%3Aother", http.StatusBadRequest},
		{"acr_values=urn%3Aexample%3Amfa+urn%3Aexample%3Amfa", http.StatusBadRequest},
		{"max_age=60", http.StatusBadRequest},
		{"max_age=-1", http.StatusBadRequest},
		{"max_age=%2B900", http.StatusBadRequest},
		{"max_age=900s", http.StatusBadRequest},
		{"max_age=900&max_age=0", http.StatusBadRequest},
	} {
		resp, err := c.Get(e.srv.URL + "/bff/login?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("login?%s = %d, want %d", tc.query, resp.StatusCode, tc.want)
			continue
		}
		if resp.StatusCode != http.StatusFound {
			continue
		}
		sent, _ := url.Parse(resp.Header.Get("Location"))
		in, _ := url.ParseQuery(tc.query)
		for _, k := range []string{"acr_values", "max_age"} {
			if sent.Query().Get(k) != in.Get(k) {
				t.Errorf("login?%s sent %s=%q", tc.query, k, sent.Query().Get(k))
			}
		}
	}
}

func TestStepUpSameUserRotatesTheSessionID(t *testing.T) {
	e := newStepEnv(t)
	before := e.signIn()
	if s := e.session(before); s.ACR != "" || s.AuthTime.IsZero() {
		t.Errorf("plain login session acr %q, auth_time %v; want none and the ID token's", s.ACR, s.AuthTime)
	}
	resp, u := e.get(stepUpPath)
	if resp.StatusCode != http.StatusOK || u.Path != "/pay" || u.RawQuery != "" {
		t.Fatalf("step-up ended with %d at %s, want /pay", resp.StatusCode, u)
	}
	after := e.cookie()
	if after == before || after == "" {
		t.Fatal("step-up kept the session id")
	}
	if e.session(before) != nil {
		t.Error("the pre-step-up session still works")
	}
	s := e.session(after)
	if s == nil || s.Subject != "alice" || s.ACR != mfa || time.Since(s.AuthTime) > time.Minute {
		t.Fatalf("upgraded session = %+v, want alice with acr %s and a fresh auth_time", s, mfa)
	}
	if got := e.endReasons(); !slices.Equal(got, []string{"step_up"}) {
		t.Errorf("sessions ended for %v, want [step_up]", got)
	}
}

func TestStepUpFailuresLeaveTheSession(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(op *hostileop.Provider)
		path  string
	}{
		{"auth_time missing with max_age", func(op *hostileop.Provider) { op.SetDefect(hostileop.AuthTimeMissing) }, stepUpPath},
		{"auth_time older than max_age", func(op *hostileop.Provider) { op.SetAuthAge(time.Hour) }, stepUpPath},
		{"acr not asked for", func(op *hostileop.Provider) { op.SetACR("urn:example:weak") }, stepUpPath},
		{"user cancels", func(op *hostileop.Provider) { op.SetAuthorizeError("access_denied") }, stepUpPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newStepEnv(t)
			before := e.signIn()
			tc.setup(e.op)
			resp, u := e.get(tc.path)
			if resp.StatusCode != http.StatusOK || u.Path != "/pay" || u.Query().Get("error") != "step_up_failed" {
				t.Fatalf("failed step-up ended with %d at %s, want /pay?error=step_up_failed", resp.StatusCode, u)
			}
			if e.cookie() != before {
				t.Error("a failed step-up changed the session cookie")
			}
			if s := e.session(before); s == nil || s.ACR != "" {
				t.Errorf("session after a failed step-up = %+v, want the old one, not upgraded", s)
			}
			if got := e.endReasons(); len(got) != 0 {
				t.Errorf("a failed step-up ended sessions: %v", got)
			}
		})
	}
}

// TestStepUpMissingAuthTimeOnlyMattersWithMaxAge: a token without
// auth_time is fine for a login that sent no max_age.
func TestStepUpMissingAuthTimeOnlyMattersWithMaxAge(t *testing.T) {
	e := newStepEnv(t)
	e.op.SetDefect(hostileop.AuthTimeMissing)
	resp, u := e.get("/bff/login?acr_values=urn%3Aexample%3Amfa&returnUrl=%2Fpay")
	if resp.StatusCode != http.StatusOK || u.Path != "/pay" || u.RawQuery != "" {
		t.Fatalf("acr-only step-up ended with %d at %s", resp.StatusCode, u)
	}
	if s := e.session(e.cookie()); s == nil || s.ACR != mfa || !s.AuthTime.IsZero() {
		t.Errorf("session = %+v, want acr %s and no auth_time", s, mfa)
	}
}

func TestStepUpAsAnotherUserIsANewSession(t *testing.T) {
	e := newStepEnv(t)
	before := e.signIn()
	e.op.SetUser("mallory", map[string]any{"name": "Mallory"})
	resp, u := e.get(stepUpPath)
	if resp.StatusCode != http.StatusOK || u.Path != "/pay" {
		t.Fatalf("step-up as another user ended with %d at %s", resp.StatusCode, u)
	}
	if e.session(before) != nil {
		t.Error("alice's session survived a login as mallory")
	}
	s := e.session(e.cookie())
	if s == nil || s.Subject != "mallory" {
		t.Fatalf("session after the login = %+v, want mallory's", s)
	}
	if got := e.endReasons(); !slices.Equal(got, []string{"relogin"}) {
		t.Errorf("sessions ended for %v, want [relogin] (not an upgrade)", got)
	}
}

func TestStepUpStateIsSealedInTheTransaction(t *testing.T) {
	// A step-up's acr_values and max_age ride the sealed transaction: a
	// browser cannot change what the callback checks.
	ring := seal.Ephemeral()
	n := int64(900)
	tx := &transaction{State: "st", Nonce: "n", Verifier: "v", ReturnURL: "/", Expires: time.Now().Add(time.Minute),
		ACRValues: []string{mfa}, MaxAge: &n}
	v, err := sealTx(ring, testPrefix, tx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openTxValue(ring, txCookieName(testPrefix, "st"), v)
	if err != nil || !slices.Equal(got.ACRValues, []string{mfa}) || got.MaxAge == nil || *got.MaxAge != 900 {
		t.Fatalf("opened %+v, %v", got, err)
	}
	b, _ := json.Marshal(got)
	if strings.Contains(v, string(b)) {
		t.Fatal("transaction cookie is not sealed")
	}
}

func FuzzParseStepUp(f *testing.F) {
	for _, s := range []string{"acr_values=urn%3Aa&max_age=900", "max_age=0", "acr_values=urn%3Aa+urn%3Aa", "max_age=99999999999", "acr_values=x&acr_values=y"} {
		f.Add(s)
	}
	allowedACR := []string{"urn:a", "urn:b"}
	allowedMaxAge := []time.Duration{0, 15 * time.Minute}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		su, ok := parseStepUp(q, allowedACR, allowedMaxAge)
		if !ok {
			if su.asked() {
				t.Fatalf("refused %q but returned %+v", query, su)
			}
			return
		}
		for i, v := range su.ACRValues {
			if !slices.Contains(allowedACR, v) || slices.Contains(su.ACRValues[:i], v) {
				t.Fatalf("accepted acr value %q from %q", v, query)
			}
		}
		if su.MaxAge != nil && *su.MaxAge != 0 && *su.MaxAge != 900 {
			t.Fatalf("accepted max_age %d from %q", *su.MaxAge, query)
		}
		p := su.params()
		if p["acr_values"] != strings.Join(su.ACRValues, " ") || (su.MaxAge == nil) != (p["max_age"] == "") {
			t.Fatalf("params %v do not say %+v", p, su)
		}
	})
}

// TestStepUpWithTheDevelopmentProvider: a real provider that honours
// max_age (it re-authenticates when the sign-in is older) answers a step-up
// with a fresh auth_time, and the session is upgraded under a new id.
func TestStepUpWithTheDevelopmentProvider(t *testing.T) {
	var op *devprovider.Provider
	e := newStepEnvWith(t, func(callback string) string {
		srv := httptest.NewUnstartedServer(nil)
		t.Cleanup(srv.Close)
		issuer := "http://" + srv.Listener.Addr().String()
		var err error
		op, err = devprovider.New(devprovider.Options{Issuer: issuer, AutoLogin: "alice",
			Clients: []devprovider.Client{{ID: stepClientID, Secret: stepClientSecret, RedirectURIs: []string{callback}}},
			Logger:  slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = op
		srv.Start()
		return issuer
	})
	before := e.signIn()
	first := e.session(before).AuthTime
	if first.IsZero() {
		t.Fatal("the development provider's ID token gave the session no auth_time")
	}
	// max_age=0: the provider must sign the user in again (OpenID Connect
	// Core §3.1.2.1), and auth_time says when.
	resp, u := e.get("/bff/login?max_age=0&returnUrl=%2Fpay")
	if resp.StatusCode != http.StatusOK || u.Path != "/pay" || u.RawQuery != "" {
		t.Fatalf("step-up ended with %d at %s, want /pay", resp.StatusCode, u)
	}
	after := e.cookie()
	s := e.session(after)
	if after == before || s == nil || e.session(before) != nil {
		t.Fatal("the step-up did not move the session to a new id")
	}
	if s.AuthTime.Before(first) || time.Since(s.AuthTime) > time.Minute {
		t.Errorf("auth_time after the step-up = %v, want a fresh one, not before %v", s.AuthTime, first)
	}
	if got := op.Stats().Logins; got != 2 {
		t.Errorf("the provider signed the user in %d times, want 2 (max_age forced a new sign-in)", got)
	}
	if got := e.endReasons(); !slices.Equal(got, []string{"step_up"}) {
		t.Errorf("sessions ended for %v, want [step_up]", got)
	}
}
