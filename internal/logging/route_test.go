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
