package logging

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

func TestAccessLogNamesTheRoute(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := AccessLog(logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A handler that derives its own request context still reaches the slot.
		r = r.WithContext(httpx.WithRequestID(r.Context(), "req-7"))
		httpx.SetRoute(r.Context(), "api:/api/")
		w.WriteHeader(http.StatusTeapot)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/orders?code=secret", nil))
	line := buf.String()
	for _, want := range []string{`"route":"api:/api/"`, `"status":418`, `"path":"/api/orders"`} {
		if !strings.Contains(line, want) {
			t.Errorf("access log %s lacks %s", line, want)
		}
	}
	if strings.Contains(line, "secret") {
		t.Error("access log carries the query")
	}
}

// TestAccessLogTakesTheIDSetInItsContext: an id the handler records with
// httpx.SetRequestID is the request's id for everything that reads the
// context, the response's X-Request-Id, and the access log's request_id.
func TestAccessLogTakesTheIDSetInItsContext(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := AccessLog(logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpx.SetRequestID(w, r.Context(), "req-9") {
			t.Error("SetRequestID found no slot in the access log's context")
		}
		if httpx.SetRequestID(w, r.Context(), "req-10") {
			t.Error("SetRequestID replaced an id already set")
		}
		if got := httpx.RequestID(r.Context()); got != "req-9" {
			t.Errorf("RequestID = %q, want req-9", got)
		}
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/orders", nil))
	if got := w.Header().Values("X-Request-Id"); len(got) != 1 || got[0] != "req-10" {
		// The second call found the slot taken and only set the header.
		t.Errorf("X-Request-Id = %q, want [req-10]", got)
	}
	if line := buf.String(); !strings.Contains(line, `"request_id":"req-9"`) {
		t.Errorf("access log %s lacks request_id req-9", line)
	}
}
