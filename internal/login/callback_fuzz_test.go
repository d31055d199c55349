package login

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

// FuzzCallback feeds arbitrary callback parameters, with and without a
// matching transaction cookie, at the top level and in a frame, and checks
// that the callback never panics, never answers success, and never sets a
// session cookie: no input a browser or attacker can send makes a session
// without the provider. In a frame the answer is the silent-login page
// saying false.
func FuzzCallback(f *testing.F) {
	store := memstore.New(memstore.Options{SweepInterval: -1})
	f.Cleanup(func() { store.Close() })
	mgr, err := session.NewManager(session.Options{Store: store, Ring: seal.Ephemeral(), CookieName: "__Host-gatehouse",
		IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	ring := seal.Ephemeral()
	// The provider cannot be reached: whatever passes the local checks
	// must still fail closed.
	h, err := New(Options{Provider: provider.NewSource(provider.Options{Issuer: "http://127.0.0.1:1"}, time.Hour),
		Sessions: mgr, Ring: ring})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	good, _ := sealTx(ring, h.txPrefix, &transaction{State: "s1", Nonce: "n", Verifier: "v", ReturnURL: "/", Expires: now.Add(time.Minute)})
	silent, _ := sealTx(ring, h.txPrefix, &transaction{State: "s2", Nonce: "n", Verifier: "v", ReturnURL: "/", Expires: now.Add(time.Minute), Silent: true})
	f.Add("code=abc&state=s1", "s1", good, false)
	f.Add("error=access_denied&state=s1", "s1", good, false)
	f.Add("state=s1&iss=https%3A%2F%2Fevil", "s1", good, false)
	f.Add("code=x&state=", "", "", false)
	f.Add("state=%00%ff&code=%zz", "s1", "garbage", false)
	f.Add("code=abc&state=s1", "s1", good, true)
	f.Add("error=login_required&state=s2", "s2", silent, false)
	f.Add("code=abc&state=s2", "s2", silent, true)
	f.Fuzz(func(t *testing.T, query, cookieState, cookieValue string, framed bool) {
		r := httptest.NewRequest("GET", "/bff/callback", nil)
		r.URL.RawQuery = query
		if cookieValue != "" && !strings.ContainsAny(cookieValue, "\r\n;") {
			r.Header.Set("Cookie", txCookieName(h.txPrefix, cookieState)+"="+url.QueryEscape(cookieValue))
		}
		if framed {
			r.Header.Set("Sec-Fetch-Dest", "iframe")
		}
		w := httptest.NewRecorder()
		h.Callback(w, r)
		switch body := w.Body.String(); {
		case w.Code == 200 && strings.Contains(body, `data-logged-in="false"`):
			// The silent-login page: only for a frame or a silent
			// transaction, and framable by the app's origin only.
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self'") {
				t.Fatalf("silent answer with CSP %q", csp)
			}
			if !framed && cookieValue != silent {
				t.Fatalf("callback %q answered a top-level navigation with the silent page", query)
			}
		case strings.Contains(body, "data-logged-in"):
			t.Fatalf("callback %q answered %d with a silent page saying true", query, w.Code)
		case w.Code < 400:
			t.Fatalf("callback %q answered %d", query, w.Code)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == "__Host-gatehouse" && c.MaxAge >= 0 && c.Value != "" {
				t.Fatalf("callback %q set a session cookie", query)
			}
		}
		if w.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Fatal("callback without Referrer-Policy: no-referrer")
		}
	})
}
