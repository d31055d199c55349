package logging

import (
	"context"
	"log/slog"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// RequestIDKey is the attribute key of the request id.
const RequestIDKey = "request_id"

// WithRequestID wraps h so that every record logged with a context that
// carries a request id (httpx.WithRequestID) has it as the attribute
// request_id, so that no call site writes it out. A record that already has
// the attribute keeps its own.
func WithRequestID(h slog.Handler) slog.Handler {
	if r, ok := h.(*requestIDHandler); ok {
		return r
	}
	return &requestIDHandler{inner: h}
}

type requestIDHandler struct {
	inner slog.Handler
}

func (h *requestIDHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := httpx.RequestID(ctx); id != "" {
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == RequestIDKey
			return !has
		})
		if !has {
			r = r.Clone()
			r.AddAttrs(slog.String(RequestIDKey, id))
		}
	}
	return h.inner.Handle(ctx, r)
}

func (h *requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &requestIDHandler{inner: h.inner.WithAttrs(attrs)}
}

func (h *requestIDHandler) WithGroup(name string) slog.Handler {
	return &requestIDHandler{inner: h.inner.WithGroup(name)}
}

// ForGatehouse returns the logger Gatehouse's packages log with: l (nil
// discards) with credentials redacted and the request id added from the
// context. This is the one rule for a nil logger: it discards.
func ForGatehouse(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(WithRequestID(Redact(l.Handler())))
}
