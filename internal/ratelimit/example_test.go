package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/ratelimit"
)

func ExampleLimiter_Handler() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.New(ratelimit.Options{Rate: 1, Burst: 2, Now: func() time.Time { return start }})
	peer := func(r *http.Request) netip.Addr {
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		return ap.Addr()
	}
	h := l.Handler(peer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/bff/login", nil))
		fmt.Printf("%d retry-after=%q\n", rec.Code, rec.Header().Get("Retry-After"))
	}
	// Output:
	// 200 retry-after=""
	// 200 retry-after=""
	// 429 retry-after="1"
}
