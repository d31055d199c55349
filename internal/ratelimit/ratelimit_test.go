package ratelimit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"golang.org/x/time/rate"
)

func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

func TestAllowLimitsAndRecovers(t *testing.T) {
	c := newClock()
	l := New(Options{Rate: 1, Burst: 3, Now: c.Now})
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	for i := range 3 {
		if !l.Allow(a) {
			t.Fatalf("request %d within burst refused", i+1)
		}
	}
	if l.Allow(a) {
		t.Fatal("request over burst allowed")
	}
	if !l.Allow(b) {
		t.Fatal("another client limited by the first one's traffic")
	}
	c.Advance(999 * time.Millisecond)
	if l.Allow(a) {
		t.Fatal("allowed before a token was refilled")
	}
	c.Advance(time.Millisecond)
	if !l.Allow(a) {
		t.Fatal("refused after a token was refilled")
	}
	if l.Allow(a) {
		t.Fatal("allowed twice on one refilled token")
	}
	c.Advance(time.Hour)
	for i := range 3 {
		if !l.Allow(a) {
			t.Fatalf("request %d after recovery refused", i+1)
		}
	}
}

func TestKeyGroupsIPv6By64(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"},
		{"2001:db8:1:2::1%eth0", "2001:db8:1:2::"},
		{"fe80::1", "fe80::"},
	}
	for _, tt := range tests {
		if got := Key(netip.MustParseAddr(tt.in)); got != netip.MustParseAddr(tt.want) {
			t.Errorf("Key(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got := Key(netip.Addr{}); got.IsValid() {
		t.Errorf("Key(invalid) = %s", got)
	}

	c := newClock()
	l := New(Options{Rate: 1, Burst: 1, Now: c.Now})
	if !l.Allow(netip.MustParseAddr("2001:db8::1")) {
		t.Fatal("first request refused")
	}
	if l.Allow(netip.MustParseAddr("2001:db8::ffff:1")) {
		t.Error("another address in the same /64 got a fresh bucket")
	}
	if !l.Allow(netip.MustParseAddr("2001:db8:0:1::1")) {
		t.Error("a different /64 shares the bucket")
	}
}

func TestZeroRateMeansNoLimit(t *testing.T) {
	for _, r := range []rate.Limit{0, rate.Inf} {
		l := New(Options{Rate: r})
		for range 100 {
			if !l.Allow(netip.MustParseAddr("192.0.2.1")) {
				t.Fatalf("rate %v refused a request", r)
			}
		}
		if l.Len() != 0 {
			t.Errorf("rate %v tracked %d clients", r, l.Len())
		}
	}
}

func TestMemoryStaysBounded(t *testing.T) {
	c := newClock()
	const max = 1000
	l := New(Options{Rate: 1, Burst: 1, MaxClients: max, Now: c.Now})
	hot := netip.MustParseAddr("198.51.100.1")
	l.Allow(hot)
	for i := range 100000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !l.Allow(ip) {
			t.Fatalf("new client %s refused", ip)
		}
		if i%500 == 0 {
			// A client in constant use stays remembered, and limited.
			if l.Allow(hot) {
				t.Fatal("the busy client escaped its limit through eviction of others")
			}
		}
		if n := l.Len(); n > max {
			t.Fatalf("after %d clients Len = %d > %d", i+1, n, max)
		}
	}
	if l.Len() != max {
		t.Errorf("Len = %d, want %d", l.Len(), max)
	}
	if len(l.clients) != l.lru.Len() {
		t.Errorf("map has %d entries, list %d", len(l.clients), l.lru.Len())
	}
}

func TestIdleClientsAreDroppedFirst(t *testing.T) {
	c := newClock()
	l := New(Options{Rate: 1, Burst: 2, MaxClients: 3, Now: c.Now})
	if l.opts.TTL != 2*time.Second {
		t.Fatalf("default TTL = %v, want the full refill time 2s", l.opts.TTL)
	}
	idle1, idle2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	l.Allow(idle1)
	l.Allow(idle2)
	c.Advance(3 * time.Second)
	busy := netip.MustParseAddr("192.0.2.3")
	l.Allow(busy)
	l.Allow(busy)
	l.Allow(netip.MustParseAddr("192.0.2.4"))
	if l.Len() != 2 {
		t.Errorf("Len = %d, want 2 (both idle clients dropped)", l.Len())
	}
	if l.Allow(busy) {
		t.Error("the busy client's bucket was reset")
	}
}

func TestHandlerAnswers429(t *testing.T) {
	c := newClock()
	var limited int
	l := New(Options{Rate: 0.5, Burst: 1, Now: c.Now, OnLimited: func(*http.Request) { limited++ }})
	h := l.Handler(func(r *http.Request) netip.Addr {
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		return ap.Addr()
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	do := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/bff/login", nil)
		r.RemoteAddr = "203.0.113.9:4321"
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := do(); rec.Code != http.StatusNoContent {
		t.Fatalf("first request: %d", rec.Code)
	}
	c.Advance(500 * time.Millisecond)
	rec := do()
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("second request: %d, want 429", rec.Code)
	}
	if got := rec.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (1.5s rounded up)", got)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] != "rate_limited" {
		t.Errorf("body = %s (%v)", rec.Body, err)
	}
	if limited != 1 {
		t.Errorf("OnLimited called %d times, want 1", limited)
	}
	c.Advance(1500 * time.Millisecond)
	if rec := do(); rec.Code != http.StatusNoContent {
		t.Errorf("after Retry-After: %d", rec.Code)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int64
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {90 * time.Second, 90}}
	for _, tt := range tests {
		if got := retryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
