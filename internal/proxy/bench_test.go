package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
)

var benchBody = strings.Repeat(`{"id":12345,"name":"order","items":[1,2,3]},`, 24)

func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, benchBody)
	}))
	b.Cleanup(up.Close)
	return up
}

func benchRequest() *http.Request {
	r := httptest.NewRequest("GET", "/api/orders?page=2", nil)
	r.RemoteAddr = "192.0.2.10:51000"
	r.Header.Set("Cookie", "__Host-gatehouse=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0; theme=dark")
	r.Header.Set("X-CSRF", "1")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return r
}

// BenchmarkProxy measures an authenticated API call through Forward:
// header sanitising, token injection and the leak guard included.
func BenchmarkProxy(b *testing.B) {
	up := benchUpstream(b)
	p := newProxy(b, []Route{{Prefix: "/api/", Upstream: mustURL(b, up.URL)}}, testOptions(b))
	req := benchRequest()
	m, ok := p.Match(req)
	if !ok {
		b.Fatal("no route")
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.Forward(w, req, m, Credential{Token: testToken})
		if w.Code != 200 || w.Body.Len() != len(benchBody) {
			b.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}

// BenchmarkBareReverseProxy is the baseline: a plain httputil.ReverseProxy
// with the same transport settings and the same upstream.
func BenchmarkBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	target := mustURL(b, up.URL)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport: NewTransport(),
	}
	req := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		rp.ServeHTTP(w, req)
		if w.Code != 200 || w.Body.Len() != len(benchBody) {
			b.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}
