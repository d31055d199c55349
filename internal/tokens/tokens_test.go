package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/dpop"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/internal/tokens"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

// The gateway's wiring passes these; they must keep satisfying the
// interfaces tokens owns.
var (
	_ tokens.Provider = (*provider.Source)(nil)
	_ tokens.Sessions = (*session.Manager)(nil)
)

const (
	issuer  = "https://op.example"
	subject = "alice"
	skew    = 60 * time.Second
)

// events is an ordered log of what the fakes saw, shared between them.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(ev string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, ev)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// fakeProvider is a token endpoint. By default a refresh rotates both
// tokens ("at-N", "rt-N", valid for an hour, with an ID token of the
// session's user) and a token request returns "tok-N" for five minutes.
type fakeProvider struct {
	clock  *testkit.Clock
	events *events

	mu        sync.Mutex
	refreshes []string     // refresh tokens presented
	requests  []url.Values // token requests, scopes as "scope"
	keys      []*dpop.Key  // DPoP key in each call's context
	n         int
	// block, when set, holds every refresh until it is closed.
	block chan struct{}
	// refreshErr, idIss and idSub shape refresh answers; noID leaves the
	// ID token out.
	refreshErr   error
	idIss, idSub string
	noID         bool
	// tokenErr fails token requests.
	tokenErr error
}

func (p *fakeProvider) Refresh(ctx context.Context, refreshToken string, extra url.Values) (*oauth2.Token, *provider.IDToken, error) {
	p.events.add("refresh " + refreshToken)
	if p.block != nil {
		<-p.block
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshes = append(p.refreshes, refreshToken)
	p.keys = append(p.keys, dpop.KeyFrom(ctx))
	if p.refreshErr != nil {
		return nil, nil, p.refreshErr
	}
	p.n++
	tok := (&oauth2.Token{
		AccessToken:  fmt.Sprintf("at-%d", p.n),
		TokenType:    "Bearer",
		RefreshToken: fmt.Sprintf("rt-%d", p.n),
		Expiry:       p.clock.Now().Add(time.Hour),
	}).WithExtra(map[string]any{"scope": "openid api"})
	if p.noID {
		return tok, nil, nil
	}
	id := &provider.IDToken{Raw: fmt.Sprintf("id-%d", p.n), Issuer: issuer, Subject: subject}
	if p.idIss != "" {
		id.Issuer = p.idIss
	}
	if p.idSub != "" {
		id.Subject = p.idSub
	}
	return tok, id, nil
}

func (p *fakeProvider) TokenRequest(ctx context.Context, params url.Values, scopes []string) (*oauth2.Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	req := url.Values{}
	for k, v := range params {
		req[k] = slices.Clone(v)
	}
	if scopes != nil {
		req.Set("scope", strings.Join(scopes, " "))
	}
	p.requests = append(p.requests, req)
	p.keys = append(p.keys, dpop.KeyFrom(ctx))
	if p.tokenErr != nil {
		return nil, p.tokenErr
	}
	p.n++
	return &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", p.n), TokenType: "Bearer", Expiry: p.clock.Now().Add(5 * time.Minute)}, nil
}

func (p *fakeProvider) refreshCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.refreshes)
}

func (p *fakeProvider) requestCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.requests)
}

func (p *fakeProvider) set(f func(p *fakeProvider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// watchedSessions is the real session manager, logging each reload (and
// whether it asked for a fresh read) and save, and failing them on demand.
type watchedSessions struct {
	*session.Manager
	events *events

	mu      sync.Mutex
	loadErr error
	saveErr error
}

func (w *watchedSessions) Load(ctx context.Context, r *http.Request, slide bool) (*session.Session, error) {
	w.mu.Lock()
	err := w.loadErr
	w.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return w.Manager.Load(ctx, r, slide)
}

func (w *watchedSessions) LoadKey(ctx context.Context, key string, slide bool) (*session.Session, error) {
	w.events.add(fmt.Sprintf("load fresh=%v", session.FreshRead(ctx)))
	w.mu.Lock()
	err := w.loadErr
	w.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return w.Manager.LoadKey(ctx, key, slide)
}

func (w *watchedSessions) Save(ctx context.Context, s *session.Session) error {
	w.events.add("save")
	w.mu.Lock()
	err := w.saveErr
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return w.Manager.Save(ctx, s)
}

// fakeLocker is a cross-process lock. Lock on a held key reports on
// waiting, then waits for the release.
type fakeLocker struct {
	events  *events
	err     error
	waiting chan string

	mu   sync.Mutex
	held map[string]chan struct{}
}

func newLocker(ev *events) *fakeLocker {
	return &fakeLocker{events: ev, waiting: make(chan string, 100), held: map[string]chan struct{}{}}
}

func (l *fakeLocker) Lock(ctx context.Context, key string, _ time.Duration) (func(), error) {
	if l.err != nil {
		return nil, l.err
	}
	for {
		l.mu.Lock()
		released, busy := l.held[key]
		if !busy {
			released = make(chan struct{})
			l.held[key] = released
			l.mu.Unlock()
			l.events.add("lock " + key)
			return func() {
				l.events.add("unlock " + key)
				l.mu.Lock()
				delete(l.held, key)
				l.mu.Unlock()
				close(released)
			}, nil
		}
		l.mu.Unlock()
		l.waiting <- key
		select {
		case <-released:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

type fixture struct {
	t        *testing.T
	clock    *testkit.Clock
	events   *events
	store    store.Store
	sessions *watchedSessions
	provider *fakeProvider
	locker   *fakeLocker // nil unless asked for
	m        *tokens.Manager

	mu       sync.Mutex
	outcomes []string
	ends     []string
}

// newFixture returns a Manager on a fake provider and a real session
// manager over a memory store, with a fake cross-process lock if locked.
func newFixture(t *testing.T, locked bool) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), events: &events{}}
	f.store = memstore.New(memstore.Options{Now: f.clock.Now, SweepInterval: -1})
	t.Cleanup(func() { f.store.Close() })
	sm, err := session.NewManager(session.Options{
		Store: f.store, Ring: seal.Ephemeral(), CookieName: "__Host-test",
		IdleTimeout: 24 * time.Hour, AbsoluteTimeout: 48 * time.Hour, Now: f.clock.Now,
		OnEnd: func(_ context.Context, keys []string, reason string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.ends = append(f.ends, reason)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sessions = &watchedSessions{Manager: sm, events: f.events}
	f.provider = &fakeProvider{clock: f.clock, events: f.events}
	var locker tokens.Locker
	if locked {
		f.locker = newLocker(f.events)
		locker = f.locker
	}
	f.m = tokens.New(tokens.Options{
		Provider: f.provider,
		Sessions: f.sessions,
		Skew:     skew,
		Locker:   locker,
		Now:      f.clock.Now,
		OnRefresh: func(outcome string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.outcomes = append(f.outcomes, outcome)
		},
	})
	return f
}

// login stores a session of alice holding toks and returns it.
func (f *fixture) login(toks session.Tokens) *session.Session {
	f.t.Helper()
	s, _ := f.loginCookie(&session.Session{Issuer: issuer, Subject: subject, Tokens: toks})
	return s
}

// loginCookie stores s and returns it with its cookie value.
func (f *fixture) loginCookie(s *session.Session) (*session.Session, string) {
	f.t.Helper()
	cookie, err := f.sessions.Create(context.Background(), s)
	if err != nil {
		f.t.Fatal(err)
	}
	return s, cookie
}

// stored returns the session as the store holds it, or nil when it is gone.
func (f *fixture) stored(key string) *session.Session {
	f.t.Helper()
	s, err := f.sessions.Manager.LoadKey(context.Background(), key, false)
	if errors.Is(err, session.ErrNoSession) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) refreshOutcomes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.outcomes)
}

func (f *fixture) endReasons() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ends)
}

// expiring returns tokens whose access token expires d from now.
func (f *fixture) expiring(d time.Duration) session.Tokens {
	return session.Tokens{AccessToken: "at-0", TokenType: "Bearer", RefreshToken: "rt-0", IDToken: "id-0", Expiry: f.clock.Now().Add(d)}
}

func TestUserTokenRefreshesWithinTheSkewAndNotBefore(t *testing.T) {
	tests := []struct {
		name        string
		expiresIn   time.Duration // zero with noExpiry
		noExpiry    bool
		noAccess    bool
		noRefresh   bool
		wantToken   string
		wantErr     error
		wantRefresh bool
	}{
		{name: "valid for longer than the skew", expiresIn: skew + time.Second, wantToken: "at-0"},
		{name: "valid for an hour", expiresIn: time.Hour, wantToken: "at-0"},
		{name: "no expiry", noExpiry: true, wantToken: "at-0"},
		{name: "one second inside the skew", expiresIn: skew - time.Second, wantToken: "at-1", wantRefresh: true},
		{name: "exactly at the skew", expiresIn: skew, wantToken: "at-1", wantRefresh: true},
		{name: "expired", expiresIn: -time.Minute, wantToken: "at-1", wantRefresh: true},
		{name: "no access token", expiresIn: time.Hour, noAccess: true, wantToken: "at-1", wantRefresh: true},
		{name: "inside the skew without a refresh token", expiresIn: skew - time.Second, noRefresh: true, wantToken: "at-0"},
		{name: "expired without a refresh token", expiresIn: -time.Second, noRefresh: true, wantErr: tokens.ErrSessionEnded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, false)
			toks := f.expiring(tt.expiresIn)
			if tt.noExpiry {
				toks.Expiry = time.Time{}
			}
			if tt.noAccess {
				toks.AccessToken = ""
			}
			if tt.noRefresh {
				toks.RefreshToken = ""
			}
			s := f.login(toks)

			got, err := f.m.UserToken(context.Background(), s)
			if !errors.Is(err, tt.wantErr) || got != tt.wantToken {
				t.Fatalf("UserToken = %q, %v; want %q, %v", got, err, tt.wantToken, tt.wantErr)
			}
			want := 0
			if tt.wantRefresh {
				want = 1
			}
			if n := f.provider.refreshCount(); n != want {
				t.Fatalf("provider refreshes = %d, want %d", n, want)
			}
			stored := f.stored(s.Key)
			switch {
			case tt.wantErr != nil:
				if stored != nil {
					t.Fatal("session still stored after ErrSessionEnded")
				}
				if r := f.endReasons(); !slices.Equal(r, []string{"refresh_failed"}) {
					t.Errorf("end reasons = %v, want [refresh_failed]", r)
				}
			case tt.wantRefresh:
				if f.provider.refreshes[0] != "rt-0" {
					t.Errorf("refreshed with %q, want rt-0", f.provider.refreshes[0])
				}
				want := session.Tokens{AccessToken: "at-1", TokenType: "Bearer", RefreshToken: "rt-1", IDToken: "id-1", Scope: "openid api", Expiry: f.clock.Now().Add(time.Hour)}
				for what, got := range map[string]session.Tokens{"caller's session": s.Tokens, "stored session": stored.Tokens} {
					if !got.Expiry.Equal(want.Expiry) {
						t.Errorf("%s expiry = %v, want %v", what, got.Expiry, want.Expiry)
					}
					got.Expiry = want.Expiry
					if got != want {
						t.Errorf("%s tokens = %+v, want %+v", what, got, want)
					}
				}
				if o := f.refreshOutcomes(); !slices.Equal(o, []string{"ok"}) {
					t.Errorf("refresh outcomes = %v, want [ok]", o)
				}
			default:
				if stored == nil || stored.Tokens.RefreshToken != toks.RefreshToken || stored.Tokens.AccessToken != toks.AccessToken {
					t.Errorf("stored session changed without a refresh: %+v", stored)
				}
				if o := f.refreshOutcomes(); len(o) != 0 {
					t.Errorf("refresh outcomes = %v, want none", o)
				}
			}
		})
	}
}

func TestUserTokenRefreshesOnceTheClockReachesTheSkew(t *testing.T) {
	f := newFixture(t, false)
	s := f.login(f.expiring(10 * time.Minute))
	steps := []struct {
		advance   time.Duration
		wantToken string
	}{
		{0, "at-0"},
		{9*time.Minute - time.Second, "at-0"}, // 61s left
		{time.Second, "at-1"},                 // 60s left: refresh
		{50 * time.Minute, "at-1"},            // the new token has 10m left
		{10 * time.Minute, "at-2"},            // now inside its skew
	}
	for i, st := range steps {
		f.clock.Advance(st.advance)
		got, err := f.m.UserToken(context.Background(), s)
		if err != nil || got != st.wantToken {
			t.Fatalf("step %d: UserToken = %q, %v; want %q", i, got, err, st.wantToken)
		}
	}
	if got := f.provider.refreshes; !slices.Equal(got, []string{"rt-0", "rt-1"}) {
		t.Errorf("refresh tokens presented = %v, want [rt-0 rt-1]: each rotated token used once", got)
	}
}

func TestConcurrentUserTokenCallsRefreshOnce(t *testing.T) {
	for _, withLocker := range []bool{false, true} {
		t.Run(fmt.Sprintf("locker=%v", withLocker), func(t *testing.T) {
			f := newFixture(t, withLocker)
			s := f.login(f.expiring(time.Second))
			// Each request has its own copy of the session, as loaded from
			// its cookie, all holding the same nearly expired tokens.
			const callers = 100
			copies := make([]*session.Session, callers)
			for i := range copies {
				copies[i] = f.stored(s.Key)
			}
			block := make(chan struct{})
			f.provider.block = block

			var started, done sync.WaitGroup
			got := make([]string, callers)
			errs := make([]error, callers)
			for i := range callers {
				started.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					started.Done()
					got[i], errs[i] = f.m.UserToken(context.Background(), copies[i])
				}()
			}
			started.Wait()
			close(block)
			done.Wait()

			for i := range callers {
				if errs[i] != nil || got[i] != "at-1" {
					t.Fatalf("caller %d: UserToken = %q, %v; want at-1", i, got[i], errs[i])
				}
				if copies[i].Tokens.RefreshToken != "rt-1" {
					t.Fatalf("caller %d holds refresh token %q, want rt-1", i, copies[i].Tokens.RefreshToken)
				}
			}
			if n := f.provider.refreshCount(); n != 1 {
				t.Fatalf("provider refreshes = %d, want exactly 1 for %d concurrent callers", n, callers)
			}
			if o := f.refreshOutcomes(); !slices.Equal(o, []string{"ok"}) {
				t.Errorf("refresh outcomes = %v, want [ok]", o)
			}
			if st := f.stored(s.Key); st.Tokens.RefreshToken != "rt-1" {
				t.Errorf("stored refresh token = %q, want rt-1", st.Tokens.RefreshToken)
			}
		})
	}
}

// Another replica holds the session's refresh lock and refreshes meanwhile:
// this one waits for the lock, reloads the session from the backend and
// uses the other replica's tokens rather than spending its refresh token.
func TestLockContentionUsesTheOtherReplicasRefresh(t *testing.T) {
	f := newFixture(t, true)
	locker := f.locker
	s := f.login(f.expiring(30 * time.Second))
	ctx := context.Background()

	// The other replica takes the lock first.
	unlock, err := locker.Lock(ctx, "refresh:"+s.Key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		token string
		err   error
	}
	res := make(chan result, 1)
	go func() {
		tok, err := f.m.UserToken(ctx, s)
		res <- result{tok, err}
	}()
	select {
	case key := <-locker.waiting:
		if key != "refresh:"+s.Key {
			t.Fatalf("waited for lock %q", key)
		}
	case r := <-res:
		t.Fatalf("UserToken returned %q, %v without waiting for the held lock", r.token, r.err)
	}

	// The other replica refreshes and saves, then releases the lock.
	other := f.stored(s.Key)
	other.Tokens = session.Tokens{AccessToken: "at-other", TokenType: "Bearer", RefreshToken: "rt-other", Expiry: f.clock.Now().Add(time.Hour)}
	if err := f.sessions.Manager.Save(ctx, other); err != nil {
		t.Fatal(err)
	}
	unlock()

	r := <-res
	if r.err != nil || r.token != "at-other" {
		t.Fatalf("UserToken = %q, %v; want the other replica's at-other", r.token, r.err)
	}
	if s.Tokens.RefreshToken != "rt-other" {
		t.Errorf("caller's session holds refresh token %q, want rt-other", s.Tokens.RefreshToken)
	}
	if n := f.provider.refreshCount(); n != 0 {
		t.Errorf("provider refreshes = %d, want 0: the refresh token in hand was already spent", n)
	}
	if o := f.refreshOutcomes(); len(o) != 0 {
		t.Errorf("refresh outcomes = %v, want none", o)
	}
	lock, unlockEv := "lock refresh:"+s.Key, "unlock refresh:"+s.Key
	if got := f.events.list(); !slices.Equal(got, []string{lock, unlockEv, lock, "load fresh=true", unlockEv}) {
		t.Errorf("events = %q, want the other replica's lock and unlock, then our lock, a fresh reload and our unlock", got)
	}
}

func TestRefreshReloadsTheSessionUnderTheLock(t *testing.T) {
	errStore := errors.New("store down")
	tests := []struct {
		name string
		// meanwhile changes the stored session after the caller loaded its
		// copy.
		meanwhile    func(f *fixture, stored *session.Session)
		loadErr      error
		wantToken    string
		wantErr      error
		wantRefresh  []string
		wantEvents   []string
		wantSessions int
	}{
		{
			name: "already refreshed elsewhere",
			meanwhile: func(f *fixture, st *session.Session) {
				st.Tokens = session.Tokens{AccessToken: "at-elsewhere", RefreshToken: "rt-elsewhere", Expiry: f.clock.Now().Add(time.Hour)}
				f.save(st)
			},
			wantToken:    "at-elsewhere",
			wantEvents:   []string{"lock", "load fresh=true", "unlock"},
			wantSessions: 1,
		},
		{
			name: "refresh token rotated elsewhere, access token expiring again",
			meanwhile: func(f *fixture, st *session.Session) {
				st.Tokens.RefreshToken = "rt-elsewhere"
				f.save(st)
			},
			wantToken:    "at-1",
			wantRefresh:  []string{"rt-elsewhere"},
			wantEvents:   []string{"lock", "load fresh=true", "refresh rt-elsewhere", "save", "unlock"},
			wantSessions: 1,
		},
		{
			name: "nothing changed",
			meanwhile: func(*fixture, *session.Session) {
			},
			wantToken:    "at-1",
			wantRefresh:  []string{"rt-0"},
			wantEvents:   []string{"lock", "load fresh=true", "refresh rt-0", "save", "unlock"},
			wantSessions: 1,
		},
		{
			name: "session ended meanwhile",
			meanwhile: func(f *fixture, st *session.Session) {
				if err := f.sessions.End(context.Background(), st, "logout"); err != nil {
					f.t.Fatal(err)
				}
			},
			wantErr:    tokens.ErrSessionEnded,
			wantEvents: []string{"lock", "load fresh=true", "unlock"},
		},
		{
			name:         "store fails",
			meanwhile:    func(*fixture, *session.Session) {},
			loadErr:      errStore,
			wantErr:      tokens.ErrUnavailable,
			wantEvents:   []string{"lock", "load fresh=true", "unlock"},
			wantSessions: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, true)
			s := f.login(f.expiring(10 * time.Second))
			tt.meanwhile(f, f.stored(s.Key))
			f.sessions.loadErr = tt.loadErr

			got, err := f.m.UserToken(context.Background(), s)
			if !errors.Is(err, tt.wantErr) || got != tt.wantToken {
				t.Fatalf("UserToken = %q, %v; want %q, %v", got, err, tt.wantToken, tt.wantErr)
			}
			if !slices.Equal(f.provider.refreshes, tt.wantRefresh) {
				t.Errorf("refresh tokens presented = %v, want %v", f.provider.refreshes, tt.wantRefresh)
			}
			var evs []string
			for _, e := range f.events.list() {
				evs = append(evs, strings.TrimSuffix(e, " refresh:"+s.Key))
			}
			if !slices.Equal(evs, tt.wantEvents) {
				t.Errorf("events = %q, want %q", evs, tt.wantEvents)
			}
			f.sessions.loadErr = nil
			if n := f.count(); n != tt.wantSessions {
				t.Errorf("stored sessions = %d, want %d", n, tt.wantSessions)
			}
		})
	}
}

func (f *fixture) save(s *session.Session) {
	f.t.Helper()
	if err := f.sessions.Manager.Save(context.Background(), s); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) count() int {
	recs, err := f.store.List(context.Background(), store.Filter{Issuer: issuer, Subject: subject})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(recs)
}

func TestRefreshLockFailureKeepsTheSession(t *testing.T) {
	f := newFixture(t, true)
	f.locker.err = errors.New("redis down")
	s := f.login(f.expiring(time.Second))
	if _, err := f.m.UserToken(context.Background(), s); !errors.Is(err, tokens.ErrUnavailable) {
		t.Fatalf("UserToken error = %v, want ErrUnavailable", err)
	}
	if n := f.provider.refreshCount(); n != 0 {
		t.Errorf("provider refreshes = %d, want none without the lock", n)
	}
	if st := f.stored(s.Key); st == nil || st.Tokens.RefreshToken != "rt-0" {
		t.Errorf("stored session = %+v, want it kept with rt-0", st)
	}
}

func TestRefreshFailureClassification(t *testing.T) {
	retrieve := func(status int, code string) error {
		return fmt.Errorf("provider: refresh: %w", &oauth2.RetrieveError{
			Response: &http.Response{StatusCode: status}, ErrorCode: code,
		})
	}
	tests := []struct {
		name        string
		refreshErr  error
		saveErr     error
		wantErr     error
		wantOutcome []string
		wantKept    bool
	}{
		{name: "invalid_grant ends the session", refreshErr: retrieve(400, "invalid_grant"),
			wantErr: tokens.ErrSessionEnded, wantOutcome: []string{"invalid_grant"}},
		{name: "rejected id token ends the session", refreshErr: &provider.ValidationError{Err: provider.ErrAZP},
			wantErr: tokens.ErrSessionEnded, wantOutcome: []string{"rejected"}},
		{name: "503 keeps the session", refreshErr: retrieve(503, ""),
			wantErr: tokens.ErrUnavailable, wantOutcome: []string{"error"}, wantKept: true},
		{name: "500 server_error keeps the session", refreshErr: retrieve(500, "server_error"),
			wantErr: tokens.ErrUnavailable, wantOutcome: []string{"error"}, wantKept: true},
		{name: "invalid_client keeps the session", refreshErr: retrieve(401, "invalid_client"),
			wantErr: tokens.ErrUnavailable, wantOutcome: []string{"error"}, wantKept: true},
		{name: "network error keeps the session",
			refreshErr: fmt.Errorf("provider: refresh: %w", &url.Error{Op: "Post", URL: "https://op.example/token", Err: syscall.ECONNREFUSED}),
			wantErr:    tokens.ErrUnavailable, wantOutcome: []string{"error"}, wantKept: true},
		{name: "undiscovered provider keeps the session and is no refresh outcome",
			refreshErr: fmt.Errorf("%w: %w", provider.ErrDiscovery, syscall.ECONNREFUSED),
			wantErr:    tokens.ErrUnavailable, wantKept: true},
		{name: "failing save keeps the session", saveErr: errors.New("store down"),
			wantErr: tokens.ErrUnavailable, wantOutcome: []string{"ok"}, wantKept: true},
		{name: "session gone at save", saveErr: fmt.Errorf("wrapped: %w", store.ErrNotFound),
			wantErr: tokens.ErrSessionEnded, wantOutcome: []string{"ok"}, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, false)
			f.provider.refreshErr = tt.refreshErr
			f.sessions.saveErr = tt.saveErr
			s := f.login(f.expiring(time.Second))

			got, err := f.m.UserToken(context.Background(), s)
			if !errors.Is(err, tt.wantErr) || got != "" {
				t.Fatalf("UserToken = %q, %v; want %v", got, err, tt.wantErr)
			}
			if o := f.refreshOutcomes(); !slices.Equal(o, tt.wantOutcome) {
				t.Errorf("refresh outcomes = %v, want %v", o, tt.wantOutcome)
			}
			stored := f.stored(s.Key)
			if !tt.wantKept {
				if stored != nil {
					t.Fatal("session still stored, want it ended")
				}
				if r := f.endReasons(); !slices.Equal(r, []string{"refresh_failed"}) {
					t.Errorf("end reasons = %v, want [refresh_failed]", r)
				}
				return
			}
			if stored == nil {
				t.Fatal("session gone, want it kept")
			}
			if stored.Tokens.RefreshToken != "rt-0" || stored.Tokens.AccessToken != "at-0" {
				t.Errorf("stored tokens = %+v, want them unchanged", stored.Tokens)
			}
			if r := f.endReasons(); len(r) != 0 {
				t.Errorf("end reasons = %v, want none", r)
			}
			// The failure is not remembered: once the provider and the
			// store answer again, the next call refreshes.
			f.provider.set(func(p *fakeProvider) { p.refreshErr = nil })
			f.sessions.mu.Lock()
			f.sessions.saveErr = nil
			f.sessions.mu.Unlock()
			if tt.saveErr != nil && errors.Is(tt.saveErr, store.ErrNotFound) {
				return
			}
			if got, err := f.m.UserToken(context.Background(), s); err != nil || !strings.HasPrefix(got, "at-") || got == "at-0" {
				t.Errorf("UserToken after recovery = %q, %v; want a refreshed token", got, err)
			}
		})
	}
}

func TestRefreshedIDTokenMustKeepIssuerAndSubject(t *testing.T) {
	tests := []struct {
		name        string
		iss, sub    string
		noID        bool
		wantErr     error
		wantOutcome string
		wantIDToken string
	}{
		{name: "same iss and sub", wantOutcome: "ok", wantIDToken: "id-1"},
		{name: "no id token in the response", noID: true, wantOutcome: "ok", wantIDToken: "id-0"},
		{name: "other sub", sub: "mallory", wantErr: tokens.ErrSessionEnded, wantOutcome: "rejected"},
		{name: "other iss", iss: "https://evil.example", wantErr: tokens.ErrSessionEnded, wantOutcome: "rejected"},
		{name: "other iss and sub", iss: "https://evil.example", sub: "mallory", wantErr: tokens.ErrSessionEnded, wantOutcome: "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, false)
			f.provider.idIss, f.provider.idSub, f.provider.noID = tt.iss, tt.sub, tt.noID
			s := f.login(f.expiring(time.Second))

			got, err := f.m.UserToken(context.Background(), s)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("UserToken = %q, %v; want %v", got, err, tt.wantErr)
			}
			if o := f.refreshOutcomes(); !slices.Equal(o, []string{tt.wantOutcome}) {
				t.Errorf("refresh outcomes = %v, want [%s]", o, tt.wantOutcome)
			}
			stored := f.stored(s.Key)
			if tt.wantErr != nil {
				if got != "" || stored != nil {
					t.Fatalf("token %q, stored %v: want no token and the session ended", got, stored != nil)
				}
				return
			}
			if got != "at-1" || stored == nil || stored.Tokens.IDToken != tt.wantIDToken || stored.Tokens.RefreshToken != "rt-1" {
				t.Fatalf("token %q, stored %+v; want at-1 with id token %s and rt-1", got, stored, tt.wantIDToken)
			}
		})
	}
}

func TestRefreshAndExchangeSignWithTheSessionsDPoPKey(t *testing.T) {
	f := newFixture(t, false)
	key, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := key.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := &session.Session{Issuer: issuer, Subject: subject, Tokens: f.expiring(time.Second), DPoPKey: der}
	if _, err := f.sessions.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.ExchangeToken(context.Background(), s, "https://api.example", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.ClientToken(context.Background(), nil, "https://api.example", ""); err != nil {
		t.Fatal(err)
	}
	keys := f.provider.keys
	if len(keys) != 3 {
		t.Fatalf("provider calls = %d, want refresh, exchange and client credentials", len(keys))
	}
	for i, what := range []string{"refresh", "exchange"} {
		if keys[i] == nil || keys[i].Thumbprint() != key.Thumbprint() {
			t.Errorf("%s not signed with the session's DPoP key", what)
		}
	}
	if keys[2] != nil {
		t.Error("client credentials request carries a session's DPoP key")
	}
}

func TestClientTokensAreCachedPerTargetUntilTheSkew(t *testing.T) {
	f := newFixture(t, false)
	steps := []struct {
		name               string
		advance            time.Duration
		scopes             []string
		resource, audience string
		wantToken          string
		wantRequests       int
	}{
		{name: "first request", resource: "https://a.example", wantToken: "tok-1", wantRequests: 1},
		{name: "same target cached", resource: "https://a.example", wantToken: "tok-1", wantRequests: 1},
		{name: "other resource", resource: "https://b.example", wantToken: "tok-2", wantRequests: 2},
		{name: "other audience", resource: "https://a.example", audience: "api-a", wantToken: "tok-3", wantRequests: 3},
		{name: "scopes", scopes: []string{"read", "write"}, resource: "https://a.example", wantToken: "tok-4", wantRequests: 4},
		{name: "other scopes", scopes: []string{"read"}, resource: "https://a.example", wantToken: "tok-5", wantRequests: 5},
		{name: "first still cached outside the skew", advance: 4*time.Minute - time.Second, resource: "https://a.example", wantToken: "tok-1", wantRequests: 5},
		{name: "first fetched again inside the skew", advance: time.Second, resource: "https://a.example", wantToken: "tok-6", wantRequests: 6},
		{name: "new token cached", resource: "https://a.example", wantToken: "tok-6", wantRequests: 6},
	}
	for _, st := range steps {
		f.clock.Advance(st.advance)
		got, err := f.m.ClientToken(context.Background(), st.scopes, st.resource, st.audience)
		if err != nil || got != st.wantToken {
			t.Fatalf("%s: ClientToken = %q, %v; want %q", st.name, got, err, st.wantToken)
		}
		if n := f.provider.requestCount(); n != st.wantRequests {
			t.Fatalf("%s: provider requests = %d, want %d", st.name, n, st.wantRequests)
		}
	}
	want := []url.Values{
		{"grant_type": {"client_credentials"}, "resource": {"https://a.example"}},
		{"grant_type": {"client_credentials"}, "resource": {"https://b.example"}},
		{"grant_type": {"client_credentials"}, "resource": {"https://a.example"}, "audience": {"api-a"}},
		{"grant_type": {"client_credentials"}, "resource": {"https://a.example"}, "scope": {"read write"}},
	}
	for i, w := range want {
		if got := f.provider.requests[i].Encode(); got != w.Encode() {
			t.Errorf("request %d = %s, want %s", i, got, w.Encode())
		}
	}
}

func TestClientTokenFailureIsNotCached(t *testing.T) {
	f := newFixture(t, false)
	f.provider.tokenErr = &oauth2.RetrieveError{Response: &http.Response{StatusCode: 503}}
	if _, err := f.m.ClientToken(context.Background(), nil, "https://a.example", ""); !errors.Is(err, tokens.ErrUnavailable) {
		t.Fatalf("ClientToken error = %v, want ErrUnavailable", err)
	}
	f.provider.set(func(p *fakeProvider) { p.tokenErr = nil })
	got, err := f.m.ClientToken(context.Background(), nil, "https://a.example", "")
	if err != nil || got != "tok-1" {
		t.Fatalf("ClientToken after recovery = %q, %v; want tok-1", got, err)
	}
	if n := f.provider.requestCount(); n != 2 {
		t.Errorf("provider requests = %d, want 2", n)
	}
}

func TestConcurrentClientTokenCallsFetchOnce(t *testing.T) {
	f := newFixture(t, false)
	const callers = 50
	var wg sync.WaitGroup
	got := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = f.m.ClientToken(context.Background(), []string{"read"}, "https://a.example", "")
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || got[i] != "tok-1" {
			t.Fatalf("caller %d: ClientToken = %q, %v; want tok-1", i, got[i], errs[i])
		}
	}
	if n := f.provider.requestCount(); n != 1 {
		t.Errorf("provider requests = %d, want 1", n)
	}
}

func TestExchangedTokensAreCachedPerSessionAndTarget(t *testing.T) {
	f := newFixture(t, false)
	// The user tokens stay valid for two hours, so that only the steps
	// below decide when they are refreshed.
	alice := f.login(f.expiring(2 * time.Hour))
	bob := f.login(session.Tokens{AccessToken: "bob-at", RefreshToken: "bob-rt", Expiry: f.clock.Now().Add(2 * time.Hour)})
	// A second session holding the very same access token still gets an
	// exchange of its own (with DPoP, it would be bound to its own key).
	twin := f.login(f.expiring(2 * time.Hour))
	steps := []struct {
		name               string
		advance            time.Duration
		s                  *session.Session
		resource, audience string
		wantToken          string
		wantRequests       int
		wantSubjectToken   string
	}{
		{name: "first exchange", s: alice, resource: "https://a.example", wantToken: "tok-1", wantRequests: 1, wantSubjectToken: "at-0"},
		{name: "same session and target cached", s: alice, resource: "https://a.example", wantToken: "tok-1", wantRequests: 1},
		{name: "other resource", s: alice, resource: "https://b.example", wantToken: "tok-2", wantRequests: 2, wantSubjectToken: "at-0"},
		{name: "other audience", s: alice, resource: "https://a.example", audience: "api-a", wantToken: "tok-3", wantRequests: 3, wantSubjectToken: "at-0"},
		{name: "other session", s: bob, resource: "https://a.example", wantToken: "tok-4", wantRequests: 4, wantSubjectToken: "bob-at"},
		{name: "other session cached", s: bob, resource: "https://a.example", wantToken: "tok-4", wantRequests: 4},
		{name: "other session with the same access token", s: twin, resource: "https://a.example", wantToken: "tok-5", wantRequests: 5, wantSubjectToken: "at-0"},
		{name: "cached outside the skew", advance: 4*time.Minute - time.Second, s: alice, resource: "https://a.example", wantToken: "tok-1", wantRequests: 5},
		{name: "exchanged again inside the skew", advance: time.Second, s: alice, resource: "https://a.example", wantToken: "tok-6", wantRequests: 6, wantSubjectToken: "at-0"},
		{name: "just before the user token's skew", advance: 2*time.Hour - 4*time.Minute - skew - time.Second, s: alice, resource: "https://c.example", wantToken: "tok-7", wantRequests: 7, wantSubjectToken: "at-0"},
		// Alice's user token now enters its skew: it is refreshed (the
		// fake's counter makes it at-8) and the new subject token is
		// exchanged anew, though the old one's exchange is still cached.
		{name: "new subject token", advance: time.Second, s: alice, resource: "https://c.example", wantToken: "tok-9", wantRequests: 8, wantSubjectToken: "at-8"},
	}
	for _, st := range steps {
		f.clock.Advance(st.advance)
		got, err := f.m.ExchangeToken(context.Background(), st.s, st.resource, st.audience)
		if err != nil || got != st.wantToken {
			t.Fatalf("%s: ExchangeToken = %q, %v; want %q", st.name, got, err, st.wantToken)
		}
		if n := f.provider.requestCount(); n != st.wantRequests {
			t.Fatalf("%s: provider token requests = %d, want %d", st.name, n, st.wantRequests)
		}
		if st.wantSubjectToken == "" {
			continue
		}
		req := f.provider.requests[len(f.provider.requests)-1]
		want := url.Values{
			"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token":        {st.wantSubjectToken},
			"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
			"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		}
		if st.resource != "" {
			want.Set("resource", st.resource)
		}
		if st.audience != "" {
			want.Set("audience", st.audience)
		}
		if req.Encode() != want.Encode() {
			t.Errorf("%s: request = %s, want %s", st.name, req.Encode(), want.Encode())
		}
	}
	if n := f.provider.refreshCount(); n != 1 {
		t.Errorf("provider refreshes = %d, want 1", n)
	}
}

func TestExchangeFailureClassification(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr error
	}{
		{"400 refused", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_target"}, tokens.ErrExchangeRefused},
		{"403 refused", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 403}, ErrorCode: "access_denied"}, tokens.ErrExchangeRefused},
		{"503 unavailable", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 503}}, tokens.ErrUnavailable},
		{"network error unavailable", &url.Error{Op: "Post", URL: "https://op.example/token", Err: syscall.ECONNREFUSED}, tokens.ErrUnavailable},
		{"undiscovered provider unavailable", fmt.Errorf("%w: %w", provider.ErrDiscovery, syscall.ECONNREFUSED), tokens.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, false)
			f.provider.tokenErr = tt.err
			s := f.login(f.expiring(time.Hour))
			got, err := f.m.ExchangeToken(context.Background(), s, "https://a.example", "")
			if !errors.Is(err, tt.wantErr) || got != "" {
				t.Fatalf("ExchangeToken = %q, %v; want %v", got, err, tt.wantErr)
			}
			if f.stored(s.Key) == nil {
				t.Error("a failed exchange ended the session")
			}
			// Not cached: the next call asks again.
			f.provider.set(func(p *fakeProvider) { p.tokenErr = nil })
			if got, err := f.m.ExchangeToken(context.Background(), s, "https://a.example", ""); err != nil || got != "tok-1" {
				t.Errorf("ExchangeToken after recovery = %q, %v; want tok-1", got, err)
			}
		})
	}
}

func TestExchangeTokenEndsWithTheUserSession(t *testing.T) {
	f := newFixture(t, false)
	f.provider.refreshErr = &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_grant"}
	s := f.login(f.expiring(time.Second))
	if _, err := f.m.ExchangeToken(context.Background(), s, "https://a.example", ""); !errors.Is(err, tokens.ErrSessionEnded) {
		t.Fatalf("ExchangeToken error = %v, want ErrSessionEnded", err)
	}
	if n := f.provider.requestCount(); n != 0 {
		t.Errorf("token exchange requests = %d, want none for an ended session", n)
	}
}

func TestCredentialFollowsTheRoutesTokenMode(t *testing.T) {
	const target = "https://api.example"
	tests := []struct {
		name        string
		need        tokens.Need
		signedIn    bool
		loadErr     error
		tokenErr    error
		wantToken   string
		wantSession bool
		wantErr     error
		wantCalls   []string // provider calls, by grant
	}{
		{name: "none signed in", need: tokens.Need{Mode: config.TokenNone}, signedIn: true},
		{name: "none anonymous", need: tokens.Need{Mode: config.TokenNone}},
		{name: "client anonymous", need: tokens.Need{Mode: config.TokenClient, Resource: target},
			wantToken: "tok-1", wantCalls: []string{"client_credentials"}},
		{name: "client signed in ignores the session", need: tokens.Need{Mode: config.TokenClient, Resource: target}, signedIn: true,
			wantToken: "tok-1", wantCalls: []string{"client_credentials"}},
		{name: "client provider down", need: tokens.Need{Mode: config.TokenClient, Resource: target},
			tokenErr: &oauth2.RetrieveError{Response: &http.Response{StatusCode: 503}},
			wantErr:  tokens.ErrClientUnavailable, wantCalls: []string{"client_credentials"}},
		{name: "user signed in", need: tokens.Need{Mode: config.TokenUser}, signedIn: true,
			wantToken: "at-0", wantSession: true},
		{name: "user anonymous", need: tokens.Need{Mode: config.TokenUser},
			wantErr: tokens.ErrLoginRequired},
		{name: "user with the store down", need: tokens.Need{Mode: config.TokenUser}, signedIn: true, loadErr: errors.New("store down"),
			wantErr: tokens.ErrSessionsUnavailable},
		{name: "user exchanged", need: tokens.Need{Mode: config.TokenUser, Exchange: true, Resource: target}, signedIn: true,
			wantToken: "tok-1", wantSession: true, wantCalls: []string{"urn:ietf:params:oauth:grant-type:token-exchange"}},
		{name: "user exchange refused", need: tokens.Need{Mode: config.TokenUser, Exchange: true, Resource: target}, signedIn: true,
			tokenErr: &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_target"},
			wantErr:  tokens.ErrExchangeRefused, wantSession: true, wantCalls: []string{"urn:ietf:params:oauth:grant-type:token-exchange"}},
		{name: "optional_user signed in", need: tokens.Need{Mode: config.TokenOptionalUser}, signedIn: true,
			wantToken: "at-0", wantSession: true},
		{name: "optional_user anonymous", need: tokens.Need{Mode: config.TokenOptionalUser}},
		{name: "optional_user with the store down", need: tokens.Need{Mode: config.TokenOptionalUser}, signedIn: true, loadErr: errors.New("store down"),
			wantErr: tokens.ErrSessionsUnavailable},
		{name: "user_or_client signed in", need: tokens.Need{Mode: config.TokenUserOrClient, Resource: target}, signedIn: true,
			wantToken: "at-0", wantSession: true},
		{name: "user_or_client anonymous", need: tokens.Need{Mode: config.TokenUserOrClient, Resource: target},
			wantToken: "tok-1", wantCalls: []string{"client_credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, false)
			f.provider.tokenErr = tt.tokenErr
			r := httptest.NewRequest(http.MethodGet, "https://app.example/api/x", nil)
			if tt.signedIn {
				_, cookie := f.loginCookie(&session.Session{Issuer: issuer, Subject: subject, Tokens: f.expiring(time.Hour)})
				r.AddCookie(&http.Cookie{Name: "__Host-test", Value: cookie})
			}
			f.sessions.loadErr = tt.loadErr

			c, s, err := f.m.Credential(context.Background(), r, tt.need)
			if !errors.Is(err, tt.wantErr) || c.Token != tt.wantToken || (s != nil) != tt.wantSession {
				t.Fatalf("Credential = %q, session %v, %v; want %q, session %v, %v", c.Token, s != nil, err, tt.wantToken, tt.wantSession, tt.wantErr)
			}
			if c.Proof != nil {
				t.Error("a bearer credential carries a DPoP proof function")
			}
			var calls []string
			for _, req := range f.provider.requests {
				calls = append(calls, req.Get("grant_type"))
			}
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("provider calls = %v, want %v", calls, tt.wantCalls)
			}
			if tt.need.Mode == config.TokenClient && len(f.provider.requests) > 0 && f.provider.requests[0].Get("resource") != target {
				t.Errorf("client token requested for %q, want %s", f.provider.requests[0].Get("resource"), target)
			}
		})
	}
}

func TestCredentialOfADPoPSessionMakesProofsWithItsKey(t *testing.T) {
	f := newFixture(t, false)
	key, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := key.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, cookie := f.loginCookie(&session.Session{Issuer: issuer, Subject: subject, Tokens: f.expiring(time.Hour), DPoPKey: der})
	r := httptest.NewRequest(http.MethodGet, "https://app.example/api/x", nil)
	r.AddCookie(&http.Cookie{Name: "__Host-test", Value: cookie})

	c, _, err := f.m.Credential(context.Background(), r, tokens.Need{Mode: config.TokenUser})
	if err != nil || c.Token != "at-0" || c.Proof == nil {
		t.Fatalf("Credential = %+v, %v; want at-0 with a proof function", c, err)
	}
	proof, err := c.Proof(http.MethodPost, "https://api.example/orders")
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Verify(proof, http.MethodPost, "https://api.example/orders", "at-0", f.clock.Now(), time.Minute)
	if err != nil {
		t.Fatalf("proof does not verify for the request and token: %v", err)
	}
	if jkt != key.Thumbprint() {
		t.Error("proof made with another key than the session's")
	}
}
