package logging

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// AccessLog wraps next so that every request is logged as one line,
// "request", after next returns, with the attributes request_id, method,
// path (never the query, which can carry an authorization code or state),
// route (the name the handler gave with httpx.SetRoute, if any), status,
// duration and bytes (response body bytes written). Requests
// answered with a 5xx status are logged at level Warn, the others at Info.
//
// The request id is the one httpx.RequestID finds in the request context
// (where Gateway.ServeHTTP records the id it assigns, see
// httpx.SetRequestID) or, when the id is assigned further in by other
// means, the X-Request-Id response header. A connection hijacked for a protocol
// upgrade is logged with status 101 unless the handler wrote another one;
// its bytes count only what went through the ResponseWriter.
//
// The ResponseWriter given to next implements http.Flusher, http.Hijacker
// and io.ReaderFrom, and has an Unwrap method, so streaming responses and
// WebSocket upgrades work through it.
func AccessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		o := httpx.Observe(w, r.Context())
		rec := &o.Recorder
		ctx := o.Context()
		r = r.WithContext(ctx)
		next.ServeHTTP(rec, r)
		id := httpx.RequestID(ctx)
		if id == "" {
			id = w.Header().Get("X-Request-Id")
		}
		status := rec.StatusCode()
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		logger.LogAttrs(ctx, level, "request",
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", o.Route()),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes", rec.Bytes()),
		)
	})
}
