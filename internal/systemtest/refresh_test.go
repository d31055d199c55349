package systemtest

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/dpop"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

// signedIn starts a gateway on the hostile provider (valid mode, sharing
// the test clock) and returns a signed-in browser.
func signedIn(t *testing.T) (*env, *hostileop.Provider, *browser) {
	t.Helper()
	e, op := startWithHostileProvider(t, nil)
	op.SetClock(e.clock.Now)
	op.SetAccessTokenTTL(5 * time.Minute)
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login = %d", resp.StatusCode)
	}
	return e, op, b
}

func TestConcurrentCallsAtExpiryRefreshOnce(t *testing.T) {
	e, op, b := signedIn(t)
	resp := b.api("GET", "/api/a")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first call = %d", resp.StatusCode)
	}
	first, _ := e.api.Last()
	oldToken := first.Header.Get("Authorization")

	e.clock.Advance(5 * time.Minute) // past expiry
	// The provider answers slowly, so the calls overlap the refresh.
	op.SetRefreshMode(hostileop.RefreshSlow)
	op.SetRefreshDelay(200 * time.Millisecond)

	const n = 100
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for range n {
		wg.Go(func() {
			statuses <- b.api("GET", "/api/b").StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a concurrent call got %d", s)
		}
	}
	if got := op.Stats().RefreshGrants; got != 1 {
		t.Errorf("provider saw %d refresh grants for %d concurrent calls, want exactly 1", got, n)
	}
	if op.Stats().RefreshReuses != 0 {
		t.Error("a spent refresh token was replayed")
	}
	last, _ := e.api.Last()
	if last.Header.Get("Authorization") == oldToken {
		t.Error("upstream still gets the expired token")
	}
	// The rotated refresh token was saved: the next expiry refreshes again
	// without a reuse.
	e.clock.Advance(5 * time.Minute)
	if resp := b.api("GET", "/api/c"); resp.StatusCode != http.StatusOK {
		t.Fatalf("call after second expiry = %d", resp.StatusCode)
	}
	if st := op.Stats(); st.RefreshGrants != 2 || st.RefreshReuses != 0 {
		t.Errorf("after second expiry: %d grants, %d reuses; want 2 and 0", st.RefreshGrants, st.RefreshReuses)
	}
}

func TestInvalidGrantEndsTheSession(t *testing.T) {
	e, op, b := signedIn(t)
	op.SetRefreshMode(hostileop.RefreshInvalidGrant)
	e.clock.Advance(5 * time.Minute)
	_, hits := e.api.Last()
	resp := b.api("GET", "/api/a")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("call with a dead refresh token = %d, want 401", resp.StatusCode)
	}
	if _, after := e.api.Last(); after != hits {
		t.Error("the upstream was called without a valid token")
	}
	// No zombie: the user endpoint agrees, even after the provider recovers.
	op.SetRefreshMode(hostileop.RefreshRotate)
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("/bff/user after invalid_grant = %d, want 401", status)
	}
}

func TestZombieSessionEndsAtUserEndpoint(t *testing.T) {
	e, op, b := signedIn(t)
	op.SetRefreshMode(hostileop.RefreshInvalidGrant)
	e.clock.Advance(6 * time.Minute)
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("/bff/user with an expired token and a dead refresh token = %d, want 401", status)
	}
}

func TestProviderOutageKeepsTheSession(t *testing.T) {
	e, op, b := signedIn(t)
	op.SetRefreshMode(hostileop.RefreshServerError)
	e.clock.Advance(5 * time.Minute)
	_, hits := e.api.Last()
	resp := b.api("GET", "/api/a")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("call during a provider outage = %d, want 503", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("503 Content-Type %q, want JSON", ct)
	}
	if _, after := e.api.Last(); after != hits {
		t.Error("the upstream was called with an expired token")
	}
	op.SetRefreshMode(hostileop.RefreshRotate)
	if resp := b.api("GET", "/api/a"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the provider recovered = %d, want 200 with the same session", resp.StatusCode)
	}
}

func TestRefreshedIDTokenMustKeepSubject(t *testing.T) {
	e, op, b := signedIn(t)
	op.SetDefect(hostileop.DifferentSub)
	e.clock.Advance(5 * time.Minute)
	if resp := b.api("GET", "/api/a"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("refresh returning another user's ID token = %d, want 401", resp.StatusCode)
	}
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("session survived a subject change: %d", status)
	}
}

func TestUpstreamSeesOnlyWhatItShould(t *testing.T) {
	e, _, b := signedIn(t)
	resp := b.do("GET", "/api/h", map[string]string{
		"X-CSRF":               "1",
		"Authorization":        "Bearer browser-supplied",
		"X-Forwarded-For":      "6.6.6.6",
		"X-Forwarded-Host":     "evil.example",
		"X_Forwarded_For":      "6.6.6.6",
		"X-Forwarded-User":     "admin",
		"X-Auth-Request-Email": "admin@example.com",
		"Forwarded":            "for=6.6.6.6",
	}, false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API call = %d", resp.StatusCode)
	}
	got, _ := e.api.Last()
	if a := got.Header.Get("Authorization"); a == "Bearer browser-supplied" || !strings.HasPrefix(a, "Bearer ") {
		t.Errorf("upstream Authorization = %q, want the session's token", a)
	}
	for name, vs := range got.Header {
		low := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		for _, v := range vs {
			if strings.Contains(v, "6.6.6.6") || strings.Contains(v, "evil.example") || strings.Contains(v, "admin") {
				t.Errorf("spoofed header reached the upstream: %s: %s", name, v)
			}
		}
		if low == "cookie" && strings.Contains(strings.Join(vs, ";"), "__Host-gatehouse") {
			t.Error("session cookie reached the upstream")
		}
	}
	if got.Header.Get("X-Forwarded-Proto") != "https" || got.Header.Get("X-Request-Id") == "" {
		t.Errorf("upstream forwarding headers: proto %q request id %q", got.Header.Get("X-Forwarded-Proto"), got.Header.Get("X-Request-Id"))
	}
}

func TestAPIRoutesNeverRedirect(t *testing.T) {
	e, _ := startWithHostileProvider(t, nil)
	b := e.browser()
	for _, tc := range []struct {
		header map[string]string
		want   int
	}{
		{map[string]string{"X-CSRF": "1"}, http.StatusUnauthorized},
		{nil, http.StatusForbidden},
		{map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	} {
		resp := b.do("GET", "/api/x", tc.header, false)
		if resp.StatusCode != tc.want || resp.Header.Get("Location") != "" {
			t.Errorf("API call %v = %d (Location %q), want %d and no redirect", tc.header, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
		if resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("API error is %q, want JSON", resp.Header.Get("Content-Type"))
		}
	}
	if _, hits := e.api.Last(); hits != 0 {
		t.Errorf("upstream called %d times by rejected requests", hits)
	}
}

func TestClientRouteUsesCachedClientCredentials(t *testing.T) {
	e, op := startWithHostileProvider(t, func(c *config.Config) {
		c.Routes = append(c.Routes, config.Route{Prefix: "/svc/", Upstream: c.Routes[0].Upstream, Token: "client", Resource: "https://svc.example"})
	})
	b := e.browser() // no session needed for a client route
	for range 3 {
		if resp := b.api("GET", "/svc/x"); resp.StatusCode != http.StatusOK {
			t.Fatalf("client route = %d", resp.StatusCode)
		}
	}
	got, _ := e.api.Last()
	if !strings.HasPrefix(got.Header.Get("Authorization"), "Bearer ") {
		t.Error("client route forwarded no token")
	}
	if n := op.Stats().ClientCredentialsGrants; n != 1 {
		t.Errorf("provider saw %d client_credentials grants for 3 calls, want 1 (cached)", n)
	}
	if form, _ := op.LastTokenRequest(); form.Get("resource") != "https://svc.example" {
		t.Errorf("client credentials resource = %q", form.Get("resource"))
	}
}

func TestTokenExchangeGivesEachAPIItsOwnToken(t *testing.T) {
	e, op := startWithHostileProvider(t, func(c *config.Config) {
		c.Routes = append(c.Routes,
			config.Route{Prefix: "/orders/", Upstream: c.Routes[0].Upstream, Token: "user", TokenExchange: true, Resource: "https://orders.example"},
			config.Route{Prefix: "/billing/", Upstream: c.Routes[0].Upstream, Token: "user", TokenExchange: true, Audience: "billing"})
	})
	b := e.browser()
	b.login("/")
	b.api("GET", "/api/x")
	userReq, _ := e.api.Last()
	userToken := userReq.Header.Get("Authorization")

	for range 3 {
		if resp := b.api("GET", "/orders/1"); resp.StatusCode != http.StatusOK {
			t.Fatalf("exchange route = %d", resp.StatusCode)
		}
	}
	got, _ := e.api.Last()
	st := op.Stats()
	if st.TokenExchanges != 1 || len(st.Exchanges) != 1 {
		t.Fatalf("provider saw %d exchanges for 3 calls, want 1 (cached)", st.TokenExchanges)
	}
	ex := st.Exchanges[0]
	if ex.Resource != "https://orders.example" || "Bearer "+ex.SubjectToken != userToken {
		t.Errorf("exchange request %+v: want the user's token as subject and the route's resource", ex)
	}
	if got.Header.Get("Authorization") != "Bearer "+ex.Issued || got.Header.Get("Authorization") == userToken {
		t.Error("the orders API did not get the exchanged token")
	}

	// A refusal by the provider is 403, and the upstream is not called.
	req, _ := http.NewRequest("POST", op.URL+"/revoke", strings.NewReader(url.Values{"token": {strings.TrimPrefix(userToken, "Bearer ")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testClientSecret)
	if resp, err := op.HTTPClient().Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke at the provider: %v", err)
	}
	_, hits := e.api.Last()
	if resp := b.api("GET", "/billing/1"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("exchange refused by the provider = %d, want 403", resp.StatusCode)
	}
	if _, after := e.api.Last(); after != hits {
		t.Error("the upstream was called without an exchanged token")
	}

	// Without a session the exchange route is 401, like any user route.
	if resp := e.browser().api("GET", "/orders/1"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("exchange route without a session = %d", resp.StatusCode)
	}
}

func TestDPoPBindsTokensToTheSessionsKey(t *testing.T) {
	e, op := startWithHostileProvider(t, func(c *config.Config) { c.OIDC.UserInfo = true })
	op.SetClock(e.clock.Now)
	op.SetAccessTokenTTL(5 * time.Minute)
	op.SetDPoP(true)
	op.SetDPoPNonce(true)
	b := e.browser()
	if resp := b.login("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login with DPoP = %d\n%s", resp.StatusCode, e.logs.String())
	}
	if resp := b.api("GET", "/api/x?q=1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("API call = %d", resp.StatusCode)
	}
	got, _ := e.api.Last()
	scheme, token, _ := strings.Cut(got.Header.Get("Authorization"), " ")
	if scheme != "DPoP" {
		t.Fatalf("upstream Authorization scheme %q, want DPoP", scheme)
	}
	jkt, err := dpop.Verify(got.Header.Get("Dpop"), "GET", e.api.URL+"/api/x", token, e.clock.Now(), time.Minute)
	if err != nil {
		t.Fatalf("upstream proof: %v", err)
	}
	bound, ok := op.DPoPBinding(token)
	if !ok || bound != jkt {
		t.Errorf("token bound to %q, proof made with %q", bound, jkt)
	}
	// A refresh keeps the binding to the same session key.
	e.clock.Advance(6 * time.Minute)
	if resp := b.api("GET", "/api/y"); resp.StatusCode != http.StatusOK {
		t.Fatalf("API call after refresh = %d", resp.StatusCode)
	}
	got, _ = e.api.Last()
	_, token2, _ := strings.Cut(got.Header.Get("Authorization"), " ")
	if token2 == token {
		t.Fatal("no refresh happened")
	}
	if bound2, _ := op.DPoPBinding(token2); bound2 != jkt {
		t.Errorf("refreshed token bound to %q, want the session key %q", bound2, jkt)
	}
	if st := op.Stats(); st.DPoPNonceChallenges == 0 || st.DPoPProofs < 3 {
		t.Errorf("provider saw %d proofs and %d nonce challenges", st.DPoPProofs, st.DPoPNonceChallenges)
	}
	// Each browser session has its own key.
	other := e.browser()
	other.login("/")
	other.api("GET", "/api/z")
	got, _ = e.api.Last()
	_, token3, _ := strings.Cut(got.Header.Get("Authorization"), " ")
	if bound3, _ := op.DPoPBinding(token3); bound3 == jkt || bound3 == "" {
		t.Error("two sessions share a DPoP key")
	}
}
