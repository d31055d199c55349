package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

func TestScrubText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"no url here?x=1", "no url here?x=1"},
		{"https://op.example/cb?code=abc&state=def", "https://op.example/cb"},
		{"http://u:p@api.example:8080/v1/x?k=v#frag", "http://api.example:8080/v1/x"},
		{`Get "https://api.example/a?token=t": dial tcp: refused`, `Get "https://api.example/a": dial tcp: refused`},
		{"a http://x/?q=1 b https://y/z#f c", "a http://x/ b https://y/z c"},
		{"http://x?", "http://x"},
		{"://nohost?q=secret", "://[unparsable]"},
		{"http://bad%zz/?q=secret", "http://[unparsable]"},
	}
	for _, tt := range tests {
		if got := scrubText(tt.in); got != tt.want {
			t.Errorf("scrubText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScrubAttrs(t *testing.T) {
	in := []attribute.KeyValue{
		attribute.String("url.query", "code="+secretCode),
		attribute.String("http.target", "/cb?code="+secretCode),
		attribute.StringSlice("http.request.header.cookie", []string{secretCookie}),
		attribute.StringSlice("http.response.header.set-cookie", []string{secretCookie}),
		attribute.String("url.full", "https://"+secretUser+"@api.example/x?k="+secretQuery),
		attribute.StringSlice("links", []string{"https://a.example/?s=" + secretState, "plain"}),
		attribute.Int("http.response.status_code", 200),
		attribute.String("url.path", "/cb"),
	}
	want := []attribute.KeyValue{
		attribute.String("url.full", "https://api.example/x"),
		attribute.StringSlice("links", []string{"https://a.example/", "plain"}),
		attribute.Int("http.response.status_code", 200),
		attribute.String("url.path", "/cb"),
	}
	got := scrubAttrs(in)
	if len(got) != len(want) {
		t.Fatalf("scrubAttrs kept %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("attribute %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// A transport error that quotes the request URL must not carry its query
// into the span status; the query is cut up to the next space, with the
// colon that followed it.
func TestTransportErrorStatusIsScrubbed(t *testing.T) {
	tr, exp := newEnabled(t, Options{})
	failing := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("upstream %s: %w", r.URL, errors.New("refused"))
	})
	req, err := http.NewRequest(http.MethodPost, "https://op.example/token?client_secret="+secretToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Transport("provider", failing).RoundTrip(req); err == nil {
		t.Fatal("the failing transport succeeded")
	}
	got := spans(t, tr, exp)
	if len(got) != 1 {
		t.Fatalf("got spans %v", names(got))
	}
	s := got[0]
	if s.Name != "POST provider" || s.SpanKind != trace.SpanKindClient {
		t.Errorf("span %q of kind %v, want a client span POST provider", s.Name, s.SpanKind)
	}
	if s.Status.Code != codes.Error || s.Status.Description != "upstream https://op.example/token refused" {
		t.Errorf("status %v %q", s.Status.Code, s.Status.Description)
	}
	assertNoSecrets(t, got)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportDoesNotChangeTheCallersRequest(t *testing.T) {
	tr, _ := newEnabled(t, Options{})
	var seen http.Header
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r.Header.Clone()
		return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: r}, nil
	})
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://api.example/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set("Tracestate", "vendor=opaque")
	resp, err := tr.Transport("upstream", base).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := req.Header.Get("Traceparent"); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Errorf("caller's traceparent changed to %q", got)
	}
	if got := req.Header.Get("Tracestate"); got != "vendor=opaque" {
		t.Errorf("caller's tracestate changed to %q", got)
	}
	if got := seen.Get("Traceparent"); got == "" || got == req.Header.Get("Traceparent") {
		t.Errorf("sent traceparent %q, want a new one", got)
	}
	if got := seen.Values("Tracestate"); len(got) != 0 {
		t.Errorf("sent tracestate %q, want none", got)
	}
}
