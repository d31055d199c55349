package login

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
)

const testPrefix = "__Host-gatehouse-tx-"

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"/", true},
		{"/app", true},
		{"/app/page?x=1#frag", true},
		{"/a%20b", true},
		{"", false},
		{"app", false},
		{"//evil.example", false},
		{"/\\evil.example", false},
		{"\\\\evil.example", false},
		{"https://evil.example", false},
		{"javascript:alert(1)", false},
		{"/\t/evil.example", false},
		{"/\n/evil.example", false},
		{"/\r\n/evil.example", false},
		{"/app\x00", false},
		{"/app\x7f", false},
		{"/%2F/evil.example", false},
		{"/%5Cevil.example", false},
		{"/%2f%2fevil.example", false},
		{"/a\\b", false},
		{" /app", false},
		{"/" + string(make([]byte, 3000)), false},
	} {
		if got := LocalPath(tc.in); got != tc.ok {
			t.Errorf("LocalPath(%q) = %v, want %v", tc.in, got, tc.ok)
		}
	}
}

func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "/a?b#c", "//x", "/\\x", "/%2F/x", "http://x", "/\t/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !LocalPath(s) {
			return
		}
		// Whatever passes must resolve, against any base, to that base's
		// own host, as a browser would resolve a Location header.
		base, _ := url.Parse("https://app.example/x")
		u, err := base.Parse(s)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", s, err)
		}
		if u.Host != "app.example" || u.Scheme != "https" {
			t.Fatalf("accepted %q, which leaves the site: %v", s, u)
		}
		for _, c := range []byte(s) {
			if c < 0x20 || c == 0x7f || c == '\\' {
				t.Fatalf("accepted %q with a control character or backslash", s)
			}
		}
	})
}

func FuzzTransactionCookie(f *testing.F) {
	ring := seal.Ephemeral()
	now := time.Unix(1_800_000_000, 0)
	good, _ := sealTx(ring, testPrefix, &transaction{State: "st", Nonce: "n", Verifier: "v", ReturnURL: "/", Expires: now.Add(time.Minute)})
	f.Add("st", good)
	f.Add("st", good[:len(good)-1]+"A")
	f.Add("other", good)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, state, value string) {
		r := httptest.NewRequest("GET", "/bff/callback", nil)
		r.Header.Set("Cookie", txCookieName(testPrefix, state)+"="+value)
		tx, err := openTx(ring, testPrefix, r, state, now)
		if err != nil {
			return
		}
		// Only a value sealed by this ring for this very state opens.
		if tx.State != state || value != good || state != "st" {
			t.Fatalf("opened a transaction for state %q from %q", state, value)
		}
	})
}

func TestTransactionBoundToStateAndExpiry(t *testing.T) {
	ring := seal.Ephemeral()
	now := time.Unix(1_800_000_000, 0)
	tx := &transaction{State: "state-a", Nonce: "n", Verifier: "v", ReturnURL: "/x", Expires: now.Add(txTTL)}
	value, err := sealTx(ring, testPrefix, tx)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", txCookieName(testPrefix, "state-a")+"="+value)
	if _, err := openTx(ring, testPrefix, r, "state-a", now); err != nil {
		t.Fatalf("valid transaction rejected: %v", err)
	}
	if _, err := openTx(ring, testPrefix, r, "state-a", now.Add(txTTL)); err == nil {
		t.Error("expired transaction accepted")
	}
	// The same sealed value under another state's cookie name fails: the
	// name is the associated data.
	r2 := httptest.NewRequest("GET", "/", nil)
	r2.Header.Set("Cookie", txCookieName(testPrefix, "state-b")+"="+value)
	if _, err := openTx(ring, testPrefix, r2, "state-b", now); err == nil {
		t.Error("transaction opened under another state")
	}
	if _, err := openTx(seal.Ephemeral(), testPrefix, r, "state-a", now); err == nil {
		t.Error("transaction opened with another key")
	}
}

func TestParsePrompt(t *testing.T) {
	for _, tc := range []struct {
		in        string
		supported []string
		want      string
		ok        bool
	}{
		{"", nil, "", true},
		// OpenID Connect Core §3.1.2.1 values pass at every provider,
		// whether or not it publishes prompt_values_supported.
		{"none", nil, "none", true},
		{"login", nil, "login", true},
		{"consent", nil, "consent", true},
		{"select_account", nil, "select_account", true},
		{"login consent", nil, "login consent", true},
		// Other values only when the provider lists them.
		{"create", nil, "", false},
		{"create", []string{"create"}, "create", true},
		{"bogus", []string{"none", "login"}, "", false},
		{"none login", nil, "", false},
		{"login login", nil, "", false},
		{"login  consent", nil, "", false},
		{" login", nil, "", false},
		{"LOGIN", []string{"LOGIN"}, "", false},
		{"login\x00", nil, "", false},
	} {
		got, ok := parsePrompt(tc.in, tc.supported)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parsePrompt(%q, %q) = %q, %v; want %q, %v", tc.in, tc.supported, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParsePrompt(f *testing.F) {
	for _, s := range []string{"none", "login consent", "create", "none login", "x\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parsePrompt(s, []string{"create"})
		if !ok {
			return
		}
		values := strings.Fields(got)
		if got != s || len(s) > maxPrompt {
			t.Fatalf("accepted %q as %q", s, got)
		}
		for _, v := range values {
			if v != "create" && !slices.Contains(corePrompts, v) {
				t.Fatalf("accepted unknown prompt value %q in %q", v, s)
			}
			if v == "none" && len(values) > 1 {
				t.Fatalf("accepted none with other values: %q", s)
			}
		}
	})
}
