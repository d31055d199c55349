package logging

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// Redacted is the value that replaces a redacted attribute's value.
const Redacted = "[redacted]"

// sensitiveKeys are attribute keys, lower case with '-' written as '_',
// whose values are credentials.
var sensitiveKeys = map[string]bool{
	"access_token":  true,
	"refresh_token": true,
	"id_token":      true,
	"token":         true,
	"client_secret": true,
	"secret":        true,
	"password":      true,
	"authorization": true,
	"cookie":        true,
	"set_cookie":    true,
	"code_verifier": true,
	"logout_token":  true,
}

// Sensitive reports whether an attribute or header named key carries a
// credential. The comparison ignores case and treats '-' and '_' alike, so
// "Set-Cookie", "set_cookie" and "ACCESS-TOKEN" all match.
func Sensitive(key string) bool {
	return sensitiveKeys[strings.ReplaceAll(strings.ToLower(key), "-", "_")]
}

// Redact wraps h so that every attribute whose key is Sensitive has its
// value replaced by Redacted before h sees it: attributes of the record,
// attributes added with WithAttrs, and attributes nested in groups at any
// depth (a group under a sensitive key is replaced whole). Values that are
// slog.LogValuers are resolved first, so a LogValue that returns a group is
// redacted too. An http.Header value has its sensitive headers (Cookie,
// Authorization, ...) redacted. Messages and the values of other keys are
// passed through unchanged.
func Redact(h slog.Handler) slog.Handler {
	if r, ok := h.(*redactHandler); ok {
		return r
	}
	return &redactHandler{inner: h}
}

type redactHandler struct {
	inner slog.Handler
}

func (h *redactHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	clean := true
	r.Attrs(func(a slog.Attr) bool {
		clean = !mayRedact(a)
		return clean
	})
	if clean {
		// Nothing to replace: the record goes on as it is, without a copy.
		return h.inner.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &redactHandler{inner: h.inner.WithAttrs(redactAttrs(attrs))}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{inner: h.inner.WithGroup(name)}
}

func redactAttrs(attrs []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = redactAttr(a)
	}
	return out
}

// mayRedact reports whether redactAttr could return something other than
// a: the key is sensitive, or the value is a group, a slog.LogValuer or an
// http.Header.
func mayRedact(a slog.Attr) bool {
	if Sensitive(a.Key) {
		return true
	}
	switch a.Value.Kind() {
	case slog.KindGroup, slog.KindLogValuer:
		return true
	case slog.KindAny:
		_, ok := a.Value.Any().(http.Header)
		return ok
	}
	return false
}

func redactAttr(a slog.Attr) slog.Attr {
	if Sensitive(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(redactAttrs(v.Group())...)}
	case slog.KindAny:
		if h, ok := v.Any().(http.Header); ok {
			return slog.Any(a.Key, redactHeader(h))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactHeader returns a copy of h with the values of sensitive headers
// replaced.
func redactHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		if Sensitive(k) {
			out[k] = []string{Redacted}
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}
