package frontend

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newStaticHandler(t *testing.T, headers map[string]string) http.Handler {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"index.html":                "<!doctype html><title>app</title>",
		"about.html":                "<p>about</p>",
		"assets/app.3f9a2c1b.js":    "console.log(1)",
		"assets/index-BXdx4yT2.css": "body{}",
		"favicon.ico":               "ico",
		".env":                      "SECRET=1",
		"assets/.git/config":        "secret",
		".well-known/security.txt":  "Contact: mailto:sec@example.com",
		"docs/guide.txt":            "guide",
	})
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret.txt": "outside secret"})
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{StaticDir: dir, Headers: headers})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestStatic(t *testing.T) {
	h := newStaticHandler(t, nil)
	const index = "<!doctype html><title>app</title>"
	tests := []struct {
		name, method, target, accept string
		status                       int
		body, cache                  string
	}{
		{"root", "GET", "/", "", 200, index, "no-cache"},
		{"index by name", "GET", "/index.html", "", 200, index, "no-cache"},
		{"other html", "GET", "/about.html", "", 200, "<p>about</p>", "no-cache"},
		{"hashed script", "GET", "/assets/app.3f9a2c1b.js", "", 200, "console.log(1)", "public, max-age=31536000, immutable"},
		{"vite hashed css", "GET", "/assets/index-BXdx4yT2.css", "", 200, "body{}", "public, max-age=31536000, immutable"},
		{"unhashed file", "GET", "/favicon.ico", "", 200, "ico", "no-cache"},
		{"spa route", "GET", "/settings/profile", "", 200, index, "no-cache"},
		{"spa route with dot by accept", "GET", "/users/john.doe", "text/html,application/xhtml+xml;q=0.9", 200, index, "no-cache"},
		{"directory with slash", "GET", "/docs/", "", 200, index, "no-cache"},
		{"directory without slash", "GET", "/docs", "", 200, index, "no-cache"},
		{"head", "HEAD", "/assets/app.3f9a2c1b.js", "", 200, "", "public, max-age=31536000, immutable"},
		{"missing asset", "GET", "/assets/missing.js", "*/*", 404, "", ""},
		{"dotfile", "GET", "/.env", "", 404, "", ""},
		{"dot directory", "GET", "/assets/.git/config", "", 404, "", ""},
		{"well-known", "GET", "/.well-known/security.txt", "", 200, "Contact: mailto:sec@example.com", "no-cache"},
		{"traversal", "GET", "/../secret.txt", "", 404, "", ""},
		{"encoded traversal", "GET", "/assets/%2e%2e/.env", "", 404, "", ""},
		{"symlink out of root", "GET", "/link.txt", "", 404, "", ""},
		{"post", "POST", "/", "", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tt.status, w.Body.String())
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("X-Frame-Options") != "DENY" ||
				w.Header().Get("Referrer-Policy") != "strict-origin-when-cross-origin" ||
				w.Header().Get("Content-Security-Policy") != "frame-ancestors 'none'" {
				t.Errorf("security headers missing: %v", w.Header())
			}
			if tt.status != 200 {
				if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "guide") {
					t.Fatalf("body leaks content: %q", w.Body.String())
				}
				return
			}
			if w.Body.String() != tt.body {
				t.Errorf("body %q, want %q", w.Body.String(), tt.body)
			}
			if cc := w.Header().Get("Cache-Control"); cc != tt.cache {
				t.Errorf("Cache-Control %q, want %q", cc, tt.cache)
			}
		})
	}
}

func TestStaticHeaders(t *testing.T) {
	h := newStaticHandler(t, map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Frame-Options":         "",
		"Permissions-Policy":      "camera=()",
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	hd := w.Header()
	if hd.Get("Content-Security-Policy") != "default-src 'self'" || hd.Get("Permissions-Policy") != "camera=()" {
		t.Errorf("configured headers missing: %v", hd)
	}
	if _, ok := hd["X-Frame-Options"]; ok {
		t.Errorf("removed default still sent: %v", hd)
	}
	if hd.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("default lost: %v", hd)
	}
}

func TestCacheControl(t *testing.T) {
	immutable := "public, max-age=31536000, immutable"
	for name, want := range map[string]string{
		"app.3f9a2c1b.js":            immutable,
		"index-BXdx4yT2.js":          immutable,
		"main.4e5f6a7b8c9d0e1f.css":  immutable,
		"chunk-vendor.a1b2c3d4e5.js": immutable,
		"logo.svg":                   "no-cache",
		"settings.js":                "no-cache",
		"app-settings.js":            "no-cache",
		"UserProfile.js":             "no-cache",
		"report-12345678.pdf":        "no-cache",
		"a1b2c3d.js":                 "no-cache",
		"index.html":                 "no-cache",
		"page.3f9a2c1b.html":         "no-cache",
		"app.3f9a2c1b":               "no-cache",
		"font-Ab12Cd34.woff2":        immutable,
	} {
		if got := cacheControl(name); got != want {
			t.Errorf("cacheControl(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	empty := t.TempDir()
	u, _ := url.Parse("http://127.0.0.1:5173")
	for _, o := range []Options{
		{},
		{Upstream: u, StaticDir: empty, CookiePrefix: "g"},
		{StaticDir: empty},
		{StaticDir: filepath.Join(empty, "missing")},
		{Upstream: u},
		{Upstream: &url.URL{Path: "/x"}, CookiePrefix: "g"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded, want error", o)
		}
	}
}

func TestUpstream(t *testing.T) {
	var got *http.Request
	dev := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			defer c.CloseNow()
			c.Write(r.Context(), websocket.MessageText, []byte(`{"type":"connected"}`))
			c.Read(r.Context())
			return
		}
		got = r
		w.Header().Add("Set-Cookie", "__Host-gatehouse=forged; Path=/")
		w.Header().Add("Set-Cookie", "vite=1")
		io.WriteString(w, "<script type=module src=/@vite/client></script>")
	}))
	defer dev.Close()
	u, _ := url.Parse(dev.URL)
	h, err := New(Options{Upstream: u, CookiePrefix: "__Host-gatehouse"})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(h)
	defer gw.Close()

	req, _ := http.NewRequest("GET", gw.URL+"/src/main.ts?t=1", nil)
	req.Header.Set("Cookie", "__Host-gatehouse=session; pref=1")
	req.Header.Set("Authorization", "Bearer x")
	req.Header["X_Forwarded_User"] = []string{"admin"}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "@vite/client") {
		t.Fatalf("status %d body %q", res.StatusCode, body)
	}
	if sc := res.Header.Values("Set-Cookie"); len(sc) != 1 || sc[0] != "vite=1" {
		t.Errorf("Set-Cookie %q", sc)
	}
	if got.URL.RequestURI() != "/src/main.ts?t=1" || got.Host != u.Host {
		t.Errorf("dev server got %s (Host %s)", got.URL.RequestURI(), got.Host)
	}
	if c := got.Header.Get("Cookie"); c != "pref=1" {
		t.Errorf("dev server Cookie %q", c)
	}
	for _, k := range []string{"Authorization", "X_forwarded_user"} {
		if v := got.Header.Values(k); len(v) > 0 {
			t.Errorf("dev server got %s: %q", k, v)
		}
	}

	// Hot module replacement WebSocket.
	ctx := t.Context()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/?token=abc", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != `{"type":"connected"}` {
		t.Fatalf("hmr message %q, %v", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// Traversal never reaches the dev server.
	got = nil
	r := httptest.NewRequest("GET", "/@fs/../../etc/passwd", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 404 || got != nil {
		t.Errorf("traversal: status %d, forwarded %v", w.Code, got != nil)
	}
}

func TestUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://" + l.Addr().String())
	l.Close()
	h, err := New(Options{Upstream: u, StripCookie: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), l.Addr().String()) {
		t.Fatalf("status %d body %q", w.Code, w.Body.String())
	}
}
