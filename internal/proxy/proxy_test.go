package proxy

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

const testToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testOptions(t testing.TB) Options {
	return Options{PublicURL: mustURL(t, "https://app.example"), CookiePrefix: "__Host-gatehouse"}
}

func newProxy(t testing.TB, routes []Route, opts Options) *Proxy {
	t.Helper()
	for i := range routes {
		if routes[i].Timeout == 0 {
			routes[i].Timeout = 30 * time.Second
		}
	}
	p, err := New(routes, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// gateway serves p the way Gatehouse does: give the request an id, match,
// forward with the credential.
func gateway(t testing.TB, p *Proxy, token string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(httpx.WithRequestID(r.Context(), httpx.NewRequestID()))
		m, ok := p.Match(r)
		if !ok {
			httpx.JSONError(w, r, http.StatusNotFound, "not_found", "")
			return
		}
		p.Forward(w, r, m, Credential{Token: token})
	}))
	t.Cleanup(s.Close)
	return s
}

// recorder is an upstream that records the requests it receives.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	srv  *httptest.Server
}

func newRecorder(t testing.TB) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r)
		rec.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) last(t testing.TB) *http.Request {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("upstream received no request")
	}
	return rec.reqs[len(rec.reqs)-1]
}

func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return res, body
}

func errorCode(t testing.TB, body []byte) string {
	t.Helper()
	var e httpx.Error
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error
}

func TestUpstreamRequestHeaders(t *testing.T) {
	rec := newRecorder(t)
	// Gatehouse's own cookies are stripped even when listed.
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, rec.srv.URL), ForwardCookies: []string{"app", "theme", "__Host-gatehouse", "__host-GATEHOUSE-tx"}}}, testOptions(t))
	gw := gateway(t, p, testToken)

	req, _ := http.NewRequest("GET", gw.URL+"/api/orders", nil)
	// Header names set as raw map keys are sent exactly as written.
	for k, v := range map[string]string{
		"Cookie":                   "__Host-gatehouse=session-value; app=1; __host-GATEHOUSE-tx=tx; theme=\"dark\"",
		"Authorization":            "Basic YnJvd3Nlcjpzw6ljcmV0",
		"X-Forwarded-For":          "6.6.6.6",
		"X_Forwarded_For":          "6.6.6.7",
		"x_forwarded-host":         "evil.example",
		"X-Forwarded-Proto":        "http",
		"X-Forwarded-User":         "admin",
		"X-Forwarded-Email":        "admin@example.com",
		"X-Auth-Request-Email":     "admin@example.com",
		"X_Auth_Request_User":      "admin",
		"X-Remote-User":            "admin",
		"x_remote_user":            "admin",
		"Remote-User":              "admin",
		"Remote_User":              "admin",
		"X-User":                   "admin",
		"X-Email":                  "admin@example.com",
		"X-Gatehouse-Sub":          "admin",
		"X-Real-Ip":                "6.6.6.6",
		"Forwarded":                "for=6.6.6.6",
		"X-Request-Id":             "spoofed",
		"X_Request_Id":             "spoofed",
		"X-Http-Method-Override":   "DELETE",
		"X-Amzn-Oidc-Data":         "forged",
		"X-Ms-Client-Principal-Id": "forged",
		"X-App-Header":             "keep",
	} {
		req.Header[k] = []string{v}
	}
	res, _ := do(t, req)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := rec.last(t)

	if a := got.Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer "+testToken {
		t.Errorf("Authorization = %q", a)
	}
	if c := got.Header.Values("Cookie"); len(c) != 1 || c[0] != `app=1; theme="dark"` {
		t.Errorf("Cookie = %q, want only the application's cookies", c)
	}
	if v := got.Header.Get("X-App-Header"); v != "keep" {
		t.Errorf("X-App-Header = %q, want keep", v)
	}
	want := map[string]string{
		"x-forwarded-for":   "127.0.0.1",
		"x-forwarded-proto": "https",
		"x-forwarded-host":  "app.example",
	}
	for k, vs := range got.Header {
		n := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		if w, ok := want[n]; ok {
			if k != http.CanonicalHeaderKey(n) || len(vs) != 1 || vs[0] != w {
				t.Errorf("upstream got %s: %q, want only %s: %q", k, vs, http.CanonicalHeaderKey(n), w)
			}
			continue
		}
		if n == "x-request-id" {
			if len(vs) != 1 || vs[0] == "spoofed" || vs[0] == "" || k != "X-Request-Id" {
				t.Errorf("upstream got %s: %q, want one fresh request id", k, vs)
			}
			continue
		}
		if dropRequestHeader(k) && n != "authorization" {
			t.Errorf("upstream got %s: %q", k, vs)
		}
	}
	if got.Host != rec.srv.Listener.Addr().String() {
		t.Errorf("Host = %q, want the upstream's", got.Host)
	}
}

func TestRequestIDFromContext(t *testing.T) {
	rec := newRecorder(t)
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, rec.srv.URL)}}, testOptions(t))
	r := httptest.NewRequest("GET", "/api/x", nil)
	r = r.WithContext(httpx.WithRequestID(r.Context(), "rid-123"))
	m, _ := p.Match(r)
	w := httptest.NewRecorder()
	p.Forward(w, r, m, Credential{})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if got := rec.last(t).Header.Get("X-Request-Id"); got != "rid-123" {
		t.Fatalf("X-Request-Id = %q, want rid-123", got)
	}
}

// TestCredential: the credential given is what the upstream gets, and a
// browser's own Authorization header never passes.
func TestCredential(t *testing.T) {
	rec := newRecorder(t)
	for _, tt := range []struct {
		token, want string
	}{
		{testToken, "Bearer " + testToken},
		{"", ""},
	} {
		rec.reqs = nil
		p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, rec.srv.URL)}}, testOptions(t))
		req, _ := http.NewRequest("GET", gateway(t, p, tt.token).URL+"/api/x", nil)
		req.Header.Set("Authorization", "Bearer from-browser")
		if res, _ := do(t, req); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if a := rec.last(t).Header.Get("Authorization"); a != tt.want {
			t.Fatalf("token %q: Authorization = %q, want %q", tt.token, a, tt.want)
		}
	}
}

func TestForwardedFor(t *testing.T) {
	opts := testOptions(t)
	opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	p := newProxy(t, nil, opts)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer ignores chain", "203.0.113.9:5000", []string{"6.6.6.6"}, "203.0.113.9"},
		{"untrusted peer without chain", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"trusted peer appends", "10.1.2.3:443", []string{"203.0.113.7"}, "203.0.113.7, 10.1.2.3"},
		{"trusted peer several lines", "10.1.2.3:443", []string{"198.51.100.1, 203.0.113.7", "10.9.9.9"}, "198.51.100.1, 203.0.113.7, 10.9.9.9, 10.1.2.3"},
		{"trusted peer ports and brackets", "10.1.2.3:443", []string{"203.0.113.7:1234, [2001:db8::1]:80, [2001:db8::2]"}, "203.0.113.7, 2001:db8::1, 2001:db8::2, 10.1.2.3"},
		{"trusted peer garbage chain", "10.1.2.3:443", []string{"203.0.113.7, evil"}, "10.1.2.3"},
		{"trusted peer empty element", "10.1.2.3:443", []string{"203.0.113.7,,"}, "10.1.2.3"},
		{"trusted ipv6 peer", "[fd00::5]:443", []string{"203.0.113.7"}, "203.0.113.7, fd00::5"},
		{"mapped ipv4 peer", "[::ffff:10.1.2.3]:443", []string{"203.0.113.7"}, "203.0.113.7, 10.1.2.3"},
		{"unparsable peer", "pipe", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != nil {
				r.Header["X-Forwarded-For"] = tt.xff
			}
			if got := p.forwardedFor(r); got != tt.want {
				t.Fatalf("forwardedFor = %q, want %q", got, tt.want)
			}
		})
	}

	long := make([]string, 100)
	for i := range long {
		long[i] = "192.0.2.1"
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Set("X-Forwarded-For", strings.Join(long, ","))
	if n := strings.Count(p.forwardedFor(r), ","); n != maxForwardedChain {
		t.Fatalf("long chain kept %d entries plus peer, want %d", n, maxForwardedChain)
	}
}

func TestPaths(t *testing.T) {
	rec := newRecorder(t)
	base := rec.srv.URL + "/base/"
	p := newProxy(t, []Route{
		{Prefix: "/api/", Upstream: mustURL(t, base), StripPrefix: true},
		{Prefix: "/api/v2/", Upstream: mustURL(t, rec.srv.URL+"/v2")},
		{Prefix: "/raw/", Upstream: mustURL(t, base)},
		{Prefix: "/", Upstream: mustURL(t, rec.srv.URL)},
	}, testOptions(t))
	gw := gateway(t, p, "")
	tests := []struct {
		path, want string
	}{
		{"/api/users?x=1&y=%20", "/base/users?x=1&y=%20"},
		{"/api/", "/base/"},
		{"/api", "/base/"},
		{"/api/a%20b/c%3Bd", "/base/a%20b/c%3Bd"},
		{"/%61pi/users", "/base/users"},
		{"/api/v2/items", "/v2/api/v2/items"},
		{"/api/v2", "/v2/api/v2"},
		{"/api/v20", "/base/v20"},
		{"/raw/x/", "/base/raw/x/"},
		{"/other", "/other"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, _ := http.NewRequest("GET", gw.URL+tt.path, nil)
			res, _ := do(t, req)
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := rec.last(t).RequestURI; got != tt.want {
				t.Fatalf("upstream request uri %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	u := mustURL(t, "http://127.0.0.1:1")
	p := newProxy(t, []Route{
		{Prefix: "/api/", Upstream: u},
		{Prefix: "/api/admin/", Upstream: u},
		{Prefix: "/files/", Upstream: u},
	}, testOptions(t))
	tests := []struct {
		target string
		want   string // matched prefix, "" for none
	}{
		{"/api/users", "/api/"},
		{"/api", "/api/"},
		{"/api/", "/api/"},
		{"/api/admin/x", "/api/admin/"},
		{"/api/admin", "/api/admin/"},
		{"/api/administrator", "/api/"},
		{"/apix", ""},
		{"/", ""},
		{"/files/a.txt", "/files/"},
		{"/api/../files/x", ""},
		{"/api/./users", ""},
		{"/api/%2e%2e/files/x", ""},
		{"/api/%2E%2e/files/x", ""},
		{"/api/..%2ffiles/x", ""},
		{"/api%2fadmin/x", ""},
		{"/api/a%2Fb", ""},
		{"/api/a%5cb", ""},
		{"/api/a\\b", ""},
		{"/api//users", ""},
		{"/api/..;/admin", ""},
		{"/api/.;x/admin", ""},
		{"/api/%252e%252e/x", ""},
		{"/api/%252f", ""},
		{"/api/a%00", ""},
		{"/api/..", ""},
		{"/api/a.b..c", "/api/"},
		{"/api/a%2eb", "/api/"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			m, ok := p.Match(r)
			got := ""
			if ok {
				got = m.Route.Prefix
			}
			if got != tt.want {
				t.Fatalf("Match(%q) = %q, want %q", tt.target, got, tt.want)
			}
		})
	}
}

func TestForwardRejectsForeignRoute(t *testing.T) {
	rec := newRecorder(t)
	p := newProxy(t, []Route{{Prefix: "/b/", Upstream: mustURL(t, rec.srv.URL)}}, testOptions(t))
	other := newProxy(t, []Route{{Prefix: "/b/", Upstream: mustURL(t, rec.srv.URL)}}, testOptions(t))
	r := httptest.NewRequest("GET", "/b/x", nil)
	m, _ := other.Match(r)
	for _, m := range []Match{m, {}} {
		w := httptest.NewRecorder()
		p.Forward(w, r, m, Credential{})
		if w.Code != http.StatusInternalServerError {
			t.Errorf("foreign match: status %d, want 500", w.Code)
		}
	}
	if len(rec.reqs) != 0 {
		t.Fatal("upstream was called")
	}
}

func TestMethods(t *testing.T) {
	rec := newRecorder(t)
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, rec.srv.URL), Methods: []string{"get", "POST"}}}, testOptions(t))
	gw := gateway(t, p, "")
	for _, tt := range []struct {
		method string
		status int
	}{{"GET", 200}, {"HEAD", 200}, {"POST", 200}, {"DELETE", 405}, {"PUT", 405}, {"OPTIONS", 405}} {
		req, _ := http.NewRequest(tt.method, gw.URL+"/api/x", nil)
		res, body := do(t, req)
		if res.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.method, res.StatusCode, tt.status)
		}
		if tt.status == 405 {
			if code := errorCode(t, body); code != "method_not_allowed" {
				t.Errorf("%s: error %q", tt.method, code)
			}
			if a := res.Header.Get("Allow"); a != "GET, HEAD, POST" {
				t.Errorf("%s: Allow %q", tt.method, a)
			}
		}
	}
}

func TestBadGateway(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, dead)}}, testOptions(t))
	req, _ := http.NewRequest("GET", gateway(t, p, testToken).URL+"/api/x", nil)
	res, body := do(t, req)
	if res.StatusCode != http.StatusBadGateway || errorCode(t, body) != "bad_gateway" {
		t.Fatalf("status %d body %s", res.StatusCode, body)
	}
	if strings.Contains(string(body), l.Addr().String()) || strings.Contains(string(body), "refused") {
		t.Fatalf("body leaks internal detail: %s", body)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(release)
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, up.URL), Timeout: 20 * time.Millisecond}}, testOptions(t))
	req, _ := http.NewRequest("GET", gateway(t, p, "").URL+"/api/slow", nil)
	res, body := do(t, req)
	if res.StatusCode != http.StatusGatewayTimeout || errorCode(t, body) != "upstream_timeout" {
		t.Fatalf("status %d body %s", res.StatusCode, body)
	}
}

// TestForwardWithinSharesTheCallersContext: within a context the caller
// can cancel, the route's timeout still answers 504, and the caller's
// cancel stops the upstream call.
func TestForwardWithinSharesTheCallersContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	gone := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
			gone <- struct{}{}
		}
	}))
	defer up.Close()
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, up.URL), Timeout: 50 * time.Millisecond}}, testOptions(t))
	cut := errors.New("test: session ended")
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(httpx.WithRequestID(r.Context(), httpx.NewRequestID()))
		m, _ := p.Match(r)
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		if r.URL.Path == "/api/stream" {
			time.AfterFunc(100*time.Millisecond, func() { cancel(cut) })
		}
		p.ForwardWithin(ctx, cancel, w, r, m, Credential{Token: testToken})
	}))
	defer gw.Close()

	req, _ := http.NewRequest("GET", gw.URL+"/api/slow", nil)
	res, body := do(t, req)
	if res.StatusCode != http.StatusGatewayTimeout || errorCode(t, body) != "upstream_timeout" {
		t.Fatalf("slow upstream: status %d body %s", res.StatusCode, body)
	}
	<-gone

	req, _ = http.NewRequest("GET", gw.URL+"/api/stream", nil)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d", res.StatusCode)
	}
	// The cut stream ends abruptly.
	io.Copy(io.Discard, res.Body)
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the caller's cancel did not end the upstream call")
	}
}

// TestTimeoutsAreReused: the route's timeout holds for every request, fast
// and slow in turn, as the proxy reuses the timers of answered ones.
func TestTimeoutsAreReused(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, up.URL), Timeout: 100 * time.Millisecond}}, testOptions(t))
	gw := gateway(t, p, "")
	for i := range 6 {
		path, want := "/api/fast", http.StatusOK
		if i%3 == 2 {
			path, want = "/api/slow", http.StatusGatewayTimeout
		}
		req, _ := http.NewRequest("GET", gw.URL+path, nil)
		res, body := do(t, req)
		if res.StatusCode != want {
			t.Fatalf("request %d to %s: status %d body %s, want %d", i, path, res.StatusCode, body, want)
		}
	}
}

func TestIsTimeout(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Err: context.DeadlineExceeded}
	if isTimeout(dialErr) {
		t.Error("dial timeout counted as upstream timeout")
	}
	if !isTimeout(&net.OpError{Op: "read", Err: context.DeadlineExceeded}) || !isTimeout(context.DeadlineExceeded) {
		t.Error("read timeout not counted")
	}
	if isTimeout(errors.New("connection reset")) {
		t.Error("reset counted as timeout")
	}
}

func TestUpstreamSetCookieFiltered(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "__Host-gatehouse=forged; Path=/; Secure")
		w.Header().Add("Set-Cookie", "app=1; Path=/")
		w.Header().Add("Set-Cookie", "=bad")
	}))
	defer up.Close()
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, up.URL)}}, testOptions(t))
	req, _ := http.NewRequest("GET", gateway(t, p, "").URL+"/api/x", nil)
	res, _ := do(t, req)
	if got := res.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != "app=1; Path=/" {
		t.Fatalf("Set-Cookie = %q", got)
	}
}

func TestServerSentEvents(t *testing.T) {
	const events = 3
	ack := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i := range events {
			io.WriteString(w, "data: event "+string(rune('0'+i))+"\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-ack: // the browser got this event while the stream is open
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer up.Close()
	p := newProxy(t, []Route{{Prefix: "/events/", Upstream: mustURL(t, up.URL)}}, testOptions(t))
	req, _ := http.NewRequest("GET", gateway(t, p, testToken).URL+"/events/", nil)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for i := range events {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := "data: event " + string(rune('0'+i)) + "\n"; line != want {
			t.Fatalf("event %d: %q, want %q", i, line, want)
		}
		if blank, _ := br.ReadString('\n'); blank != "\n" {
			t.Fatalf("event %d not terminated: %q", i, blank)
		}
		ack <- struct{}{}
	}
}

func TestWebSocket(t *testing.T) {
	var upReq *http.Request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upReq = r
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.SetReadLimit(1 << 20)
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	p := newProxy(t, []Route{{Prefix: "/ws/", Upstream: mustURL(t, up.URL), Timeout: 50 * time.Millisecond}}, testOptions(t))
	gw := gateway(t, p, testToken)

	ctx := t.Context()
	hdr := http.Header{"Cookie": {"__Host-gatehouse=session"}}
	c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/ws/chat", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, res)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	for _, msg := range []string{"one", "two", strings.Repeat("x", 70000)} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("echo %.20q…, want %.20q…", got, "echo: "+msg)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	if a := upReq.Header.Get("Authorization"); a != "Bearer "+testToken {
		t.Errorf("upstream Authorization %q", a)
	}
	if c := upReq.Header.Get("Cookie"); c != "" {
		t.Errorf("upstream Cookie %q", c)
	}
}

func TestNewValidation(t *testing.T) {
	good := Route{Prefix: "/api/", Upstream: mustURL(t, "http://127.0.0.1:8080/base"), Timeout: time.Second}
	tests := []struct {
		name   string
		routes []Route
		opts   func(*Options)
	}{
		{"prefix without leading slash", []Route{{Prefix: "api/", Upstream: good.Upstream}}, nil},
		{"prefix without trailing slash", []Route{{Prefix: "/api", Upstream: good.Upstream}}, nil},
		{"prefix with dots", []Route{{Prefix: "/api/../", Upstream: good.Upstream}}, nil},
		{"prefix with escape", []Route{{Prefix: "/a%2f/", Upstream: good.Upstream}}, nil},
		{"no upstream", []Route{{Prefix: "/api/"}}, nil},
		{"relative upstream", []Route{{Prefix: "/api/", Upstream: mustURL(t, "/x")}}, nil},
		{"ftp upstream", []Route{{Prefix: "/api/", Upstream: mustURL(t, "ftp://h/")}}, nil},
		{"userinfo upstream", []Route{{Prefix: "/api/", Upstream: mustURL(t, "http://u:p@h/")}}, nil},
		{"query upstream", []Route{{Prefix: "/api/", Upstream: mustURL(t, "http://h/?a=1")}}, nil},
		{"bad method", []Route{{Prefix: "/api/", Upstream: good.Upstream, Methods: []string{"GE T"}}}, nil},
		{"negative timeout", []Route{{Prefix: "/api/", Upstream: good.Upstream, Timeout: -1}}, nil},
		{"no timeout", []Route{{Prefix: "/api/", Upstream: good.Upstream}}, nil},
		{"duplicate prefix", []Route{good, good}, nil},
		{"no public url", []Route{good}, func(o *Options) { o.PublicURL = nil }},
		{"no cookie filter", []Route{good}, func(o *Options) { o.CookiePrefix = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(t)
			if tt.opts != nil {
				tt.opts(&o)
			}
			if _, err := New(tt.routes, o); err == nil {
				t.Fatal("New succeeded, want error")
			}
		})
	}
	if _, err := New([]Route{good}, testOptions(t)); err != nil {
		t.Fatalf("valid route: %v", err)
	}
}

func TestSanitizeResponse(t *testing.T) {
	h := http.Header{"Set-Cookie": {"__HOST-Gatehouse-tx=1; Path=/", "keep=1", "bad cookie"}}
	SanitizeResponse(h, CookiePrefixFilter("__Host-gatehouse"))
	if got := h["Set-Cookie"]; len(got) != 1 || got[0] != "keep=1" {
		t.Fatalf("Set-Cookie = %q", got)
	}
	h = http.Header{"Set-Cookie": {"__Host-gatehouse=1"}}
	SanitizeResponse(h, CookiePrefixFilter("__Host-gatehouse"))
	if _, ok := h["Set-Cookie"]; ok {
		t.Fatal("Set-Cookie kept")
	}
}

func TestSanitizeRequestCookieKeys(t *testing.T) {
	h := http.Header{"cookie": {"__Host-gatehouse=s; a=1"}, "Cookie": {"b=2"}}
	SanitizeRequest(h, CookiePrefixFilter("__Host-gatehouse"))
	if len(h) != 1 || len(h["Cookie"]) != 1 || h["Cookie"][0] != "b=2; a=1" {
		t.Fatalf("header %q", h)
	}
	h = http.Header{"Cookie": {"__Host-gatehouse=s"}}
	SanitizeRequest(h, CookiePrefixFilter("__Host-gatehouse"))
	if _, ok := h["Cookie"]; ok {
		t.Fatalf("empty Cookie header kept: %q", h)
	}
}

// leakUpstream starts an upstream for leak guard tests.
func leakUpstream(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	up := httptest.NewServer(handler)
	t.Cleanup(up.Close)
	return up
}

func TestLeakGuardBlocksBeforeCommit(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"token at start", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, testToken+" trailing text")
		}},
		{"token in middle", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"headers":{"Authorization":"`+r.Header.Get("Authorization")+`"}}`)
		}},
		{"token at end of large body", func(w http.ResponseWriter, r *http.Request) {
			b := strings.Repeat("a", 3000) + testToken
			w.Header().Set("Content-Length", "3088")
			io.WriteString(w, b[:3088-len(testToken)]+testToken)
		}},
		{"token in first flushed chunk", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, testToken)
			w.(http.Flusher).Flush()
			io.WriteString(w, "more")
		}},
		{"token in header", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Debug-Auth", r.Header.Get("Authorization"))
			io.WriteString(w, "fine")
		}},
		{"token in gzip body", func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				io.WriteString(w, "no gzip asked")
				return
			}
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, "echo "+testToken)
			zw.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := leakUpstream(t, tt.handler)
			p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, up.URL)}}, testOptions(t))
			req, _ := http.NewRequest("GET", gateway(t, p, testToken).URL+"/api/echo", nil)
			req.Header.Set("Accept-Encoding", "gzip, br")
			res, body := do(t, req)
			if res.StatusCode != http.StatusBadGateway || errorCode(t, body) != "upstream_leak_blocked" {
				t.Fatalf("status %d body %q", res.StatusCode, body)
			}
			for k, vs := range res.Header {
				if valuesContain(vs, testToken) || k == "X-Debug-Auth" {
					t.Fatalf("response header %s leaks", k)
				}
			}
		})
	}
}

func TestLeakGuardAbortsAfterCommit(t *testing.T) {
	half := len(testToken) / 2
	tests := []struct {
		name   string
		chunks []string
	}{
		{"token after first flush", []string{"first part\n", "then " + testToken + " more"}},
		{"token split across chunks", []string{"first part\n", "x" + testToken[:half], testToken[half:] + "rest"}},
		{"token split into bytes", func() []string {
			c := []string{"start\n"}
			for i := range len(testToken) {
				c = append(c, testToken[i:i+1])
			}
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan struct{})
			up := leakUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				for i, c := range tt.chunks {
					io.WriteString(w, c)
					w.(http.Flusher).Flush()
					if i == 0 && len(tt.chunks) > 1 {
						select {
						case <-got:
						case <-r.Context().Done():
							return
						}
					}
				}
			})
			p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, up.URL)}}, testOptions(t))
			req, _ := http.NewRequest("GET", gateway(t, p, testToken).URL+"/api/echo", nil)
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var received []byte
			if len(tt.chunks) > 1 {
				first := make([]byte, len(tt.chunks[0]))
				if _, err := io.ReadFull(res.Body, first); err != nil {
					t.Fatalf("first chunk: %v", err)
				}
				received = first
				close(got)
			}
			rest, err := io.ReadAll(res.Body)
			received = append(received, rest...)
			if err == nil {
				t.Fatalf("response completed normally with %q; want an aborted connection", received)
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if strings.Contains(string(received), testToken) || strings.Contains(string(received), testToken[:half]) {
				t.Fatalf("browser received token material: %q", received)
			}
		})
	}
}

func TestLeakGuardTrailers(t *testing.T) {
	got := make(chan struct{})
	up := leakUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Debug")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		select {
		case <-got:
		case <-r.Context().Done():
		}
		w.Header().Set("X-Debug", r.Header.Get("Authorization"))
	})
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, up.URL)}}, testOptions(t))
	req, _ := http.NewRequest("GET", gateway(t, p, testToken).URL+"/api/x", nil)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	first := make([]byte, 4)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatal(err)
	}
	close(got)
	_, err = io.ReadAll(res.Body)
	if err == nil {
		t.Fatal("response with leaking trailer completed normally")
	}
	if valuesContain(res.Trailer.Values("X-Debug"), testToken) {
		t.Fatal("trailer leaked")
	}
}

func TestLeakGuardPassesDownloads(t *testing.T) {
	data := make([]byte, 10<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data)
	// Plant many partial tokens, which the guard must hold and release.
	for i := 1000; i+len(testToken) < len(data); i += 32 * 1024 {
		copy(data[i:], testToken[:len(testToken)-1])
		data[i+len(testToken)-1] = ' '
	}
	if strings.Contains(string(data), testToken) {
		t.Fatal("test data contains the token")
	}
	for _, chunked := range []bool{false, true} {
		name := map[bool]string{false: "content-length", true: "chunked"}[chunked]
		t.Run(name, func(t *testing.T) {
			up := leakUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				if !chunked {
					http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(data)))
					return
				}
				for i := 0; i < len(data); i += 7777 {
					w.Write(data[i:min(i+7777, len(data))])
					if i%(7777*16) == 0 {
						w.(http.Flusher).Flush()
					}
				}
			})
			p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, up.URL)}}, testOptions(t))
			req, _ := http.NewRequest("GET", gateway(t, p, testToken).URL+"/api/file", nil)
			res, body := do(t, req)
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if sha256.Sum256(body) != sha256.Sum256(data) {
				t.Fatalf("body differs: got %d bytes, want %d", len(body), len(data))
			}
		})
	}
}

func TestSkipLeakGuard(t *testing.T) {
	up := leakUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Authorization"))
	})
	opts := testOptions(t)
	opts.SkipLeakGuard = true
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, up.URL)}}, opts)
	req, _ := http.NewRequest("GET", gateway(t, p, testToken).URL+"/api/x", nil)
	res, body := do(t, req)
	if res.StatusCode != 200 || string(body) != "Bearer "+testToken {
		t.Fatalf("status %d body %q", res.StatusCode, body)
	}
}

// Duende BFF's rule: no browser cookie reaches an upstream unless the
// route lists it.
func TestNoCookieUpstreamByDefault(t *testing.T) {
	rec := newRecorder(t)
	p := newProxy(t, []Route{
		{Prefix: "/api/", Upstream: mustURL(t, rec.srv.URL)},
		{Prefix: "/listed/", Upstream: mustURL(t, rec.srv.URL), ForwardCookies: []string{"locale"}},
	}, testOptions(t))
	gw := gateway(t, p, testToken)
	for path, want := range map[string][]string{"/api/x": nil, "/listed/x": {"locale=fr"}} {
		req, _ := http.NewRequest("GET", gw.URL+path, nil)
		req.Header["Cookie"] = []string{"__Host-gatehouse=s; app=1; locale=fr; Locale=de"}
		req.Header["cookie"] = []string{"other=2"}
		if res, _ := do(t, req); res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, res.StatusCode)
		}
		got := rec.last(t)
		var cookies []string
		for k, vs := range got.Header {
			if strings.EqualFold(k, "cookie") {
				cookies = append(cookies, vs...)
			}
		}
		if strings.Join(cookies, "|") != strings.Join(want, "|") {
			t.Errorf("%s: upstream Cookie = %q, want %q", path, cookies, want)
		}
	}
}

// A route's identity headers come only from the credential: every inbound
// spelling of their names is removed first.
func TestIdentityHeadersOnlyFromCredential(t *testing.T) {
	rec := newRecorder(t)
	p := newProxy(t, []Route{{Prefix: "/api/", Upstream: mustURL(t, rec.srv.URL), IdentityHeaders: []string{"X-Team-Id", "X-Role"}}}, testOptions(t))
	cred := Credential{Token: testToken, Headers: http.Header{"X-Team-Id": {"t-42"}}}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(httpx.WithRequestID(r.Context(), httpx.NewRequestID()))
		m, _ := p.Match(r)
		p.Forward(w, r, m, cred)
	}))
	t.Cleanup(s.Close)
	req, _ := http.NewRequest("GET", s.URL+"/api/x", nil)
	for _, k := range []string{"X-Team-Id", "x-team-id", "X_Team_Id", "x_TEAM-id", "X-Role", "x_role", "X-ROLE"} {
		req.Header[k] = []string{"spoofed"}
	}
	if res, _ := do(t, req); res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := rec.last(t)
	for k, vs := range got.Header {
		n := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		switch {
		case n == "x-team-id" && (k != "X-Team-Id" || len(vs) != 1 || vs[0] != "t-42"):
			t.Errorf("upstream got %s: %q, want only X-Team-Id: t-42", k, vs)
		case n == "x-role":
			t.Errorf("upstream got %s: %q; no claim, so no header", k, vs)
		}
	}
	if got.Header.Get("X-Team-Id") != "t-42" {
		t.Errorf("X-Team-Id = %q, want t-42", got.Header.Get("X-Team-Id"))
	}
}

func TestIsEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream":                true,
		"Text/Event-Stream; charset=utf-8": true,
		" text/event-stream ;x=y":          true,
		"text/event-streams":               false,
		"application/json":                 false,
		"":                                 false,
	} {
		if got := isEventStream(ct); got != want {
			t.Errorf("isEventStream(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestBufferPoolLendsWholeBuffers(t *testing.T) {
	b := buffers.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("buffer of %d bytes; want %d", len(b), copyBufferSize)
	}
	buffers.Put(b[:10])
	if got := buffers.Get(); len(got) != copyBufferSize {
		t.Fatalf("a buffer put back short came out with %d bytes", len(got))
	}
	buffers.Put(make([]byte, 7)) // a foreign buffer is dropped
	if got := buffers.Get(); len(got) != copyBufferSize {
		t.Fatalf("a foreign buffer came out: %d bytes", len(got))
	}
}
