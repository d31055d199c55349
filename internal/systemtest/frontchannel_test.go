package systemtest

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

// frontchannelSetup starts a gateway whose provider renders front-channel
// logout iframes for it, with a stream route.
func frontchannelSetup(t *testing.T) (*env, *hostileop.Provider, *streamUpstream) {
	t.Helper()
	up := newStreamUpstream(t)
	e := newEnv(t)
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()),
		hostileop.WithPostLogoutRedirectURIs(testClientID, e.publicURL+"/"),
		hostileop.WithFrontchannelLogoutURI(testClientID, e.publicURL+"/bff/frontchannel"))
	e.start(op.URL, withStreamRoute(up))
	return e, op, up
}

// idTokenOf returns the last ID token the provider issued (the session's).
func idTokenOf(t *testing.T, op *hostileop.Provider) string {
	t.Helper()
	issued := op.IssuedTokens()
	if len(issued) == 0 {
		t.Fatal("the provider issued no ID token")
	}
	return issued[len(issued)-1]
}

// frontchannel loads u as the provider's iframe does: a plain GET with no
// cookie (third-party cookies are blocked in the iframe).
func frontchannel(t *testing.T, e *env, u string) (*http.Response, string) {
	t.Helper()
	resp, err := e.srv.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var iframeSrc = regexp.MustCompile(`<iframe src="([^"]+)"`)

// TestFrontchannelLogoutFromTheProvider signs the user out at the
// provider (another application's RP-initiated logout of the same
// provider session): the provider's logout page frames Gatehouse's
// front-channel URI, which ends the session and closes its streams.
func TestFrontchannelLogoutFromTheProvider(t *testing.T) {
	e, op, up := frontchannelSetup(t)
	b := e.browser()
	if r := b.login("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("login = %d", r.StatusCode)
	}
	ws, sse := openWebSocket(t, b), openEventStream(t, b)

	// The provider's logout page, as another application sends the user
	// there.
	resp, err := op.HTTPClient().Get(op.URL + "/end_session?" + url.Values{"id_token_hint": {idTokenOf(t, op)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := iframeSrc.FindStringSubmatch(string(page))
	if m == nil {
		t.Fatalf("the provider's logout page frames nothing:\n%s", page)
	}
	src := strings.ReplaceAll(m[1], "&amp;", "&")
	fu, err := url.Parse(src)
	if err != nil || !strings.HasPrefix(src, e.publicURL+"/bff/frontchannel?") || fu.Query().Get("iss") != op.URL || fu.Query().Get("sid") != op.LastSID() {
		t.Fatalf("iframe src %q, want the front-channel URI with iss and sid", src)
	}
	at := time.Now()
	fr, body := frontchannel(t, e, src)
	if fr.StatusCode != http.StatusOK {
		t.Fatalf("front-channel logout = %d: %s", fr.StatusCode, body)
	}
	csp := fr.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors "+op.URL) {
		t.Errorf("front-channel CSP %q does not let the provider (%s) frame it", csp, op.URL)
	}
	if xfo := fr.Header.Get("X-Frame-Options"); xfo != "" {
		t.Errorf("front-channel response sends X-Frame-Options %q: the provider's iframe would be refused", xfo)
	}
	if cc := fr.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("front-channel Cache-Control %q, want no-store", cc)
	}
	if strings.Contains(body, op.LastSID()) || len(body) > 200 {
		t.Errorf("front-channel page is not a tiny page without detail: %q", body)
	}
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("session survived front-channel logout: /bff/user = %d", status)
	}
	for _, s := range []*liveStream{ws, sse} {
		d := waitClosed(t, s, at, "frontchannel")
		t.Logf("frontchannel: %s stream closed %v after the logout", s.kind, d.Round(time.Millisecond))
	}
	waitUpstreamEnded(t, up, 2, "frontchannel")

	// No other endpoint may be framed by the provider.
	for _, path := range []string{"/bff/user", "/bff/login", "/bff/backchannel", "/"} {
		r := e.browser().do("GET", path, nil, false)
		if strings.Contains(r.Header.Get("Content-Security-Policy"), op.URL) {
			t.Errorf("%s lets the provider frame it: %q", path, r.Header.Get("Content-Security-Policy"))
		}
	}
}

// TestFrontchannelLogoutIgnoresForgeries sends front-channel requests with
// a foreign issuer, a wrong sid and missing parameters: none ends the
// session, and none says why.
func TestFrontchannelLogoutIgnoresForgeries(t *testing.T) {
	e, op, _ := frontchannelSetup(t)
	b := e.browser()
	if r := b.login("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("login = %d", r.StatusCode)
	}
	sid := op.LastSID()
	base := e.publicURL + "/bff/frontchannel"
	cases := []struct {
		name, query string
		want        int
	}{
		{"foreign issuer", url.Values{"iss": {"https://evil.example"}, "sid": {sid}}.Encode(), http.StatusBadRequest},
		{"issuer with a trailing slash", url.Values{"iss": {op.URL + "/"}, "sid": {sid}}.Encode(), http.StatusBadRequest},
		{"no sid", url.Values{"iss": {op.URL}}.Encode(), http.StatusBadRequest},
		{"empty sid", url.Values{"iss": {op.URL}, "sid": {""}}.Encode(), http.StatusBadRequest},
		{"no iss", url.Values{"sid": {sid}}.Encode(), http.StatusBadRequest},
		{"two issuers", "iss=" + url.QueryEscape("https://evil.example") + "&iss=" + url.QueryEscape(op.URL) + "&sid=" + url.QueryEscape(sid), http.StatusBadRequest},
		{"nothing", "", http.StatusBadRequest},
		// A well-formed request for a session nobody has succeeds and
		// ends nothing: it tells a prober nothing either.
		{"unknown sid", url.Values{"iss": {op.URL}, "sid": {"sid-guessed"}}.Encode(), http.StatusOK},
	}
	for _, tc := range cases {
		resp, body := frontchannel(t, e, base+"?"+tc.query)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if strings.Contains(body, "issuer") || strings.Contains(body, "sid") || len(body) > 200 {
			t.Errorf("%s: the answer gives detail: %q", tc.name, body)
		}
		if status, _ := b.user(); status != http.StatusOK {
			t.Fatalf("%s ended the session (/bff/user = %d)", tc.name, status)
		}
	}
	if r, _ := http.NewRequest("POST", base+"?"+url.Values{"iss": {op.URL}, "sid": {sid}}.Encode(), nil); r != nil {
		resp, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST = %d, want 405", resp.StatusCode)
		}
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Fatalf("a refused request ended the session (/bff/user = %d)", status)
	}
}
