package csrf

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func newProtection(t *testing.T) *Protection {
	t.Helper()
	p, err := New(Options{HeaderName: "X-CSRF", HeaderValue: "1", Origin: "https://App.Example:443/", TrustedOrigins: []string{"https://admin.example"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	p := newProtection(t)
	tests := []struct {
		name   string
		method string
		header map[string][]string
		want   error
	}{
		{"header only", "GET", map[string][]string{"X-Csrf": {"1"}}, nil},
		{"header on post", "POST", map[string][]string{"X-Csrf": {"1"}}, nil},
		{"missing header", "GET", nil, ErrMissingHeader},
		{"missing header on post", "POST", map[string][]string{"Origin": {"https://app.example"}}, ErrMissingHeader},
		{"wrong value", "GET", map[string][]string{"X-Csrf": {"true"}}, ErrMissingHeader},
		{"empty value", "GET", map[string][]string{"X-Csrf": {""}}, ErrMissingHeader},
		{"repeated header", "GET", map[string][]string{"X-Csrf": {"1", "1"}}, ErrMissingHeader},
		{"same origin", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"https://app.example"}, "Sec-Fetch-Site": {"same-origin"}}, nil},
		{"origin case and default port", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"HTTPS://APP.EXAMPLE:443"}}, nil},
		{"trusted origin cross-site", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"https://admin.example"}, "Sec-Fetch-Site": {"cross-site"}}, nil},
		{"trusted origin same-site", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"https://admin.example"}, "Sec-Fetch-Site": {"same-site"}}, nil},
		{"foreign origin", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"https://evil.example"}}, ErrCrossOrigin},
		{"other port", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"https://app.example:8443"}}, ErrCrossOrigin},
		{"http downgrade", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"http://app.example"}}, ErrCrossOrigin},
		{"null origin", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"null"}}, ErrCrossOrigin},
		{"origin with path", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"https://app.example/x"}}, ErrCrossOrigin},
		{"two origins", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"https://app.example", "https://app.example"}}, ErrCrossOrigin},
		{"cross-site get", "GET", map[string][]string{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"cross-site"}}, ErrCrossOrigin},
		{"same-site get without origin", "GET", map[string][]string{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"same-site"}}, ErrCrossOrigin},
		{"own origin but cross-site", "POST", map[string][]string{"X-Csrf": {"1"}, "Origin": {"https://app.example"}, "Sec-Fetch-Site": {"cross-site"}}, ErrCrossOrigin},
		{"none on get", "GET", map[string][]string{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"none"}}, nil},
		{"none on head", "HEAD", map[string][]string{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"none"}}, nil},
		{"none on post", "POST", map[string][]string{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"none"}}, ErrCrossOrigin},
		{"unknown sec-fetch-site", "GET", map[string][]string{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"bogus"}}, ErrCrossOrigin},
		{"websocket same origin", "GET", map[string][]string{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}, "Origin": {"https://app.example"}}, nil},
		{"websocket trusted origin", "GET", map[string][]string{"Connection": {"Upgrade"}, "Upgrade": {"WebSocket"}, "Origin": {"https://admin.example"}, "Sec-Fetch-Site": {"cross-site"}}, nil},
		{"websocket without origin", "GET", map[string][]string{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "X-Csrf": {"1"}}, ErrMissingOrigin},
		{"websocket foreign origin", "GET", map[string][]string{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Origin": {"https://evil.example"}, "X-Csrf": {"1"}}, ErrCrossOrigin},
		{"websocket cross-site", "GET", map[string][]string{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Origin": {"https://app.example"}, "Sec-Fetch-Site": {"cross-site"}}, ErrCrossOrigin},
		{"upgrade to other protocol needs header", "GET", map[string][]string{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}, "Origin": {"https://app.example"}}, ErrMissingHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "https://app.example/api/x", nil)
			for k, v := range tt.header {
				r.Header[k] = v
			}
			err := p.Check(r)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCustomHeader(t *testing.T) {
	p, err := New(Options{HeaderName: "x-requested-with", HeaderValue: "XMLHttpRequest", Origin: "http://localhost:8080"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("DELETE", "/api/x", nil)
	r.Header.Set("X-Requested-With", "XMLHttpRequest")
	r.Header.Set("Origin", "http://localhost:8080")
	if err := p.Check(r); err != nil {
		t.Fatalf("Check = %v", err)
	}
	r.Header.Set("X-Csrf", "1")
	r.Header.Del("X-Requested-With")
	if err := p.Check(r); !errors.Is(err, ErrMissingHeader) {
		t.Fatalf("Check with default header = %v, want ErrMissingHeader", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{HeaderName: "X-CSRF", HeaderValue: "1"},
		{HeaderName: "X-CSRF", HeaderValue: "1", Origin: "app.example"},
		{HeaderName: "X-CSRF", HeaderValue: "1", Origin: "https://app.example/path"},
		{HeaderName: "X-CSRF", HeaderValue: "1", Origin: "ftp://app.example"},
		{HeaderName: "X-CSRF", HeaderValue: "1", Origin: "https://app.example", TrustedOrigins: []string{"*"}},
		{HeaderName: "X CSRF", HeaderValue: "1", Origin: "https://app.example"},
		{HeaderValue: "1", Origin: "https://app.example"},
		{HeaderName: "X-CSRF", Origin: "https://app.example"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded, want error", o)
		}
	}
}

func TestHandler(t *testing.T) {
	p := newProtection(t)
	var called bool
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))

	r := httptest.NewRequest("POST", "/api/x", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if called || w.Code != http.StatusForbidden {
		t.Fatalf("without header: called=%v code=%d", called, w.Code)
	}
	var body struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "csrf_failed" {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}

	r.Header.Set("X-CSRF", "1")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if !called || w.Code != http.StatusOK {
		t.Fatalf("with header: called=%v code=%d", called, w.Code)
	}
}

func TestParseOrigin(t *testing.T) {
	good := map[string]string{
		"https://app.example":           "https://app.example",
		"HTTPS://App.Example:443":       "https://app.example",
		"http://app.example:80":         "http://app.example",
		"http://app.example:443":        "http://app.example:443",
		"https://app.example:8443":      "https://app.example:8443",
		"http://[::1]:8080":             "http://[::1]:8080",
		"http://[0:0:0:0:0:0:0:1]":      "http://[::1]",
		"http://127.0.0.1:3000":         "http://127.0.0.1:3000",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
	}
	for in, want := range good {
		got, err := ParseOrigin(in)
		if err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "null", "app.example", "https://", "https://app.example/", "https://app.example?x",
		"https://user@app.example", "https://app.example:", "https://app.example:0", "https://app.example:65536",
		"https://app.example:+80", "https://%61pp.example", "https://app example", "https://[::1", "https://[::1]x",
		"https://[fe80::1%25eth0]", "https://[1.2.3.4]", "javascript://x", "https://a:b:c", "https://:443",
	}
	for _, in := range bad {
		if got, err := ParseOrigin(in); err == nil {
			t.Errorf("ParseOrigin(%q) = %q, want error", in, got)
		}
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example", "http://[::1]:8080", "HTTPS://A.B:443", "https://a:0", "null"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOrigin(s)
		if err != nil {
			return
		}
		again, err := ParseOrigin(o)
		if err != nil || again != o {
			t.Fatalf("normalised origin %q of %q does not round-trip: %q, %v", o, s, again, err)
		}
		for i := 0; i < len(o); i++ {
			if c := o[i]; c <= ' ' || c >= 0x7f || c == '/' && i > len("https://") || c == '@' || c == '?' || c == '#' || c == '%' {
				t.Fatalf("normalised origin %q contains %q", o, c)
			}
		}
	})
}
