package benchkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
)

// Client credentials the programs register at the provider.
const (
	ClientID     = "gatehouse-bench"
	ClientSecret = "bench-client-secret-0123456789-abcdefghij"
	// Users is how many accounts the provider has. Logins rotate over
	// them, so that Gatehouse's cap on sessions per user
	// (session.max_per_user) does not end the programs' sessions.
	Users = 1000
)

// ProviderOptions configure StartProvider.
type ProviderOptions struct {
	// RedirectURIs are the gateways' callback URLs.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where end-session may send the browser.
	PostLogoutRedirectURIs []string
	// AccessTokenTTL, IDTokenTTL: zero means 24h (no refresh in a run).
	AccessTokenTTL, IDTokenTTL time.Duration
}

// Provider is the development OpenID provider on a loopback port, behind
// a TokenWatch that observes every token endpoint exchange.
type Provider struct {
	*devprovider.Provider
	Watch *TokenWatch
	srv   *http.Server
}

// StartProvider starts the development provider with AutoLogin, so a login
// needs no form, and Users accounts.
func StartProvider(o ProviderOptions) (*Provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("benchkit: provider: %w", err)
	}
	ttl := func(d time.Duration) time.Duration {
		if d == 0 {
			return 24 * time.Hour
		}
		return d
	}
	users := make([]devprovider.User, Users)
	for i := range users {
		name := fmt.Sprintf("user%04d", i)
		users[i] = devprovider.User{Username: name, Password: name, Name: "User " + name, Email: name + "@example.com", EmailVerified: true}
	}
	op, err := devprovider.New(devprovider.Options{
		Issuer:          "http://" + ln.Addr().String(),
		AccessTokenTTL:  ttl(o.AccessTokenTTL),
		IDTokenTTL:      ttl(o.IDTokenTTL),
		RefreshTokenTTL: 48 * time.Hour,
		Clients: []devprovider.Client{{
			ID: ClientID, Secret: ClientSecret,
			RedirectURIs:           o.RedirectURIs,
			PostLogoutRedirectURIs: o.PostLogoutRedirectURIs,
		}},
		Users:     users,
		AutoLogin: users[0].Username,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("benchkit: provider: %w", err)
	}
	p := &Provider{Provider: op, Watch: NewTokenWatch(op)}
	var next atomic.Int64
	rotate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An authorization request: the next login signs in the next
		// user (concurrent logins may share one; any spread will do).
		if r.Method == http.MethodGet && r.URL.Query().Get("response_type") != "" {
			op.SetAutoLogin(users[int(next.Add(1))%len(users)].Username)
		}
		p.Watch.ServeHTTP(w, r)
	})
	p.srv = &http.Server{Handler: rotate, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() error { return p.srv.Close() }

// TokenWatch wraps a provider's handler and follows every refresh token
// family: a code grant starts a family (one per login), and each refresh
// grant is counted against the family of the token it presents. It can also
// lengthen the expires_in of refresh answers (ExtendRefreshExpiry), for
// programs that move the gateway's clock forward.
type TokenWatch struct {
	next http.Handler

	extend atomic.Int64 // seconds added to expires_in of refresh answers

	mu        sync.Mutex
	family    map[string]int // refresh token -> family
	refreshes []int          // per family
	failures  []int          // refresh errors per family
	invalid   int            // invalid_grant answers
	unknown   int            // refresh grants with a token of no known family
	codes     int
}

// NewTokenWatch wraps next.
func NewTokenWatch(next http.Handler) *TokenWatch {
	return &TokenWatch{next: next, family: make(map[string]int)}
}

// ExtendRefreshExpiry adds d to the expires_in of every later refresh answer.
func (tw *TokenWatch) ExtendRefreshExpiry(d time.Duration) { tw.extend.Store(int64(d / time.Second)) }

// TokenStats summarise what the token endpoint did.
type TokenStats struct {
	CodeGrants    int
	RefreshGrants int
	// RefreshErrors counts refresh answers with an error, InvalidGrant
	// those whose error was invalid_grant.
	RefreshErrors, InvalidGrant int
	// UnknownFamily counts refresh grants presenting a token the watch
	// never saw issued.
	UnknownFamily int
	// PerFamily[k] is the number of families (logins) that made exactly k
	// refresh grants; the last entry counts k and more.
	PerFamily []int
}

// Stats returns the counts so far. perFamilyMax bounds PerFamily.
func (tw *TokenWatch) Stats(perFamilyMax int) TokenStats {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	st := TokenStats{CodeGrants: tw.codes, InvalidGrant: tw.invalid, UnknownFamily: tw.unknown, PerFamily: make([]int, perFamilyMax+1)}
	for f, n := range tw.refreshes {
		st.RefreshGrants += n
		st.RefreshErrors += tw.failures[f]
		st.PerFamily[min(n, perFamilyMax)]++
	}
	st.RefreshGrants += tw.unknown
	return st
}

// Reset forgets the refresh counts of every family (keeping the families).
func (tw *TokenWatch) Reset() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	clear(tw.refreshes)
	clear(tw.failures)
	tw.invalid, tw.unknown = 0, 0
}

func (tw *TokenWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		tw.next.ServeHTTP(w, r)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(raw))
	grant := form.Get("grant_type")
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if grant != "authorization_code" && grant != "refresh_token" {
		tw.next.ServeHTTP(w, r)
		return
	}
	rec := &bufferedResponse{header: make(http.Header), code: http.StatusOK}
	tw.next.ServeHTTP(rec, r)
	var answer map[string]any
	dec := json.NewDecoder(bytes.NewReader(rec.body.Bytes()))
	dec.UseNumber()
	_ = dec.Decode(&answer)
	newRT, _ := answer["refresh_token"].(string)
	errCode, _ := answer["error"].(string)

	body := rec.body.Bytes()
	tw.mu.Lock()
	switch grant {
	case "authorization_code":
		if newRT != "" {
			tw.codes++
			tw.family[newRT] = len(tw.refreshes)
			tw.refreshes = append(tw.refreshes, 0)
			tw.failures = append(tw.failures, 0)
		}
	case "refresh_token":
		f, ok := tw.family[form.Get("refresh_token")]
		if !ok {
			tw.unknown++
		} else {
			tw.refreshes[f]++
			if errCode != "" || rec.code != http.StatusOK {
				tw.failures[f]++
			}
			if newRT != "" {
				tw.family[newRT] = f
			}
		}
		if errCode == "invalid_grant" {
			tw.invalid++
		}
		if ext := tw.extend.Load(); ext != 0 && errCode == "" {
			if n, err := answer["expires_in"].(json.Number).Int64(); err == nil {
				answer["expires_in"] = n + ext
				body, _ = json.Marshal(answer)
				rec.header.Set("Content-Length", strconv.Itoa(len(body)))
			}
		}
	}
	tw.mu.Unlock()
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.code)
	w.Write(body)
}

type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.code, b.wrote = code, true
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
