package tracing

import (
	"context"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// scrubbingExporter removes secrets from spans before next exports them:
// the callback query carries the authorization code and state, and API
// queries may carry anything (RFC 9700 §4.2.4, §4.3.2).
type scrubbingExporter struct{ next sdktrace.SpanExporter }

var _ sdktrace.SpanExporter = scrubbingExporter{}

func (e scrubbingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = scrubSpan(s)
	}
	return e.next.ExportSpans(ctx, out)
}

func (e scrubbingExporter) Shutdown(ctx context.Context) error { return e.next.Shutdown(ctx) }

// scrubbedSpan is a span with its attributes, events, links and status
// replaced by scrubbed copies; every other method is the original span's.
type scrubbedSpan struct {
	sdktrace.ReadOnlySpan
	attrs  []attribute.KeyValue
	events []sdktrace.Event
	links  []sdktrace.Link
	status sdktrace.Status
}

func (s *scrubbedSpan) Attributes() []attribute.KeyValue { return s.attrs }
func (s *scrubbedSpan) Events() []sdktrace.Event         { return s.events }
func (s *scrubbedSpan) Links() []sdktrace.Link           { return s.links }
func (s *scrubbedSpan) Status() sdktrace.Status          { return s.status }

func scrubSpan(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	out := &scrubbedSpan{ReadOnlySpan: s, attrs: scrubAttrs(s.Attributes()), status: s.Status()}
	out.status.Description = scrubText(out.status.Description)
	for _, ev := range s.Events() {
		ev.Attributes = scrubAttrs(ev.Attributes)
		out.events = append(out.events, ev)
	}
	for _, l := range s.Links() {
		l.Attributes = scrubAttrs(l.Attributes)
		out.links = append(out.links, l)
	}
	return out
}

// scrubAttrs returns attrs without query strings and header values, and
// with the query, fragment and user information cut from URLs in the
// remaining string values.
func scrubAttrs(attrs []attribute.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		k := string(kv.Key)
		switch {
		case k == "url.query", k == "http.target",
			strings.HasPrefix(k, "http.request.header."), strings.HasPrefix(k, "http.response.header."):
			continue
		}
		switch kv.Value.Type() {
		case attribute.STRING:
			kv.Value = attribute.StringValue(scrubText(kv.Value.AsString()))
		case attribute.STRINGSLICE:
			vs := kv.Value.AsStringSlice()
			for i := range vs {
				vs[i] = scrubText(vs[i])
			}
			kv.Value = attribute.StringSliceValue(vs)
		}
		out = append(out, kv)
	}
	return out
}

// scrubText cuts the query, fragment and user information from every
// absolute URL in s, such as url.full or an error message quoting a URL.
func scrubText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		// The URL runs from its scheme to the next character that
		// cannot be part of it unescaped.
		start := i
		for start > 0 && isSchemeChar(s[start-1]) {
			start--
		}
		end := i + 3
		for end < len(s) && !isURLEnd(s[end]) {
			end++
		}
		b.WriteString(s[:start])
		b.WriteString(scrubURL(s[start:end]))
		s = s[end:]
	}
}

// scrubURL returns raw without its query, fragment and user information.
// A value that does not parse is cut at its authority.
func scrubURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		i := strings.Index(raw, "://")
		return raw[:i+3] + "[unparsable]"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

func isSchemeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

func isURLEnd(c byte) bool {
	return c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`'
}
