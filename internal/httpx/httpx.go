// Package httpx holds the small HTTP helpers every Gatehouse handler shares:
// request ids, JSON error bodies for API callers and plain error pages for
// browser navigations. Internal error text never goes into a response; it
// goes to the log next to the request id.
package httpx

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
)

type requestIDKey struct{}

// NewRequestID returns a random request id.
func NewRequestID() string {
	var b [12]byte
	var out [16]byte
	rand.Read(b[:])
	base64.RawURLEncoding.Encode(out[:], b[:])
	return string(out[:])
}

// WithRequestID returns a context carrying id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, &id)
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	// The value is a *string, which an observed request's context hands
	// out without an allocation.
	if id, ok := ctx.Value(requestIDKey{}).(*string); ok {
		return *id
	}
	return ""
}

// Error is the JSON body of every error Gatehouse answers to an API call.
type Error struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
}

// NoStore marks a gateway-generated response as not to be cached or framed
// and not to be content-sniffed.
func NoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
}

// JSON writes v as a JSON response with the given status and no-store headers.
func JSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	NoStore(h)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// JSONError answers an API call with status and a JSON error body naming
// code (an OAuth-style error code such as "login_required"). description
// must be a fixed, public text: never internal error detail.
func JSONError(w http.ResponseWriter, r *http.Request, status int, code, description string) {
	JSON(w, status, Error{Error: code, Description: description, RequestID: RequestID(r.Context())})
}

var page = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{if .Link}}<p><a href="{{.Link}}">Continue</a></p>{{end}}
{{if .RequestID}}<p><small>Request id: <code>{{.RequestID}}</code></small></p>{{end}}</body></html>
`))

// Page answers a browser navigation with a plain HTML error page. title and
// message must be fixed, public texts. link, when not empty, is a local path
// offered to continue.
func Page(w http.ResponseWriter, r *http.Request, status int, title, message, link string) {
	h := w.Header()
	NoStore(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	page.Execute(w, struct{ Title, Message, Link, RequestID string }{title, message, link, RequestID(r.Context())})
}

type routeKey struct{}

// Observed is one request seen by an access log wrapped around the
// handler: the Recorder the handler writes through, and the request's
// context with room for what the handler learns about it (the request id
// and the route's name). Both come in one allocation.
type Observed struct {
	Recorder
	ctx observedContext
}

// observedContext is the context of an observed request. It answers for
// the request id once SetRequestID gave one, and for the route slot.
type observedContext struct {
	context.Context
	id    string
	route string
	// idHeader backs the X-Request-Id response header SetRequestID sets.
	idHeader [1]string
}

func (c *observedContext) Value(key any) any {
	switch key.(type) {
	case requestIDKey:
		if c.id != "" {
			return &c.id
		}
	case routeKey:
		return c
	}
	return c.Context.Value(key)
}

// Observe returns an Observed for a request served with w and ctx.
func Observe(w http.ResponseWriter, ctx context.Context) *Observed {
	o := &Observed{Recorder: Recorder{ResponseWriter: w}}
	o.ctx.Context = ctx
	return o
}

// Context returns the context to serve the request with.
func (o *Observed) Context() context.Context { return &o.ctx }

// Route returns the name SetRoute recorded, or "".
func (o *Observed) Route() string { return o.ctx.route }

// SetRoute records the serving route's name in ctx's slot, if it has one.
func SetRoute(ctx context.Context, name string) {
	if c, ok := ctx.Value(routeKey{}).(*observedContext); ok {
		c.route = name
	}
}

// SetRequestID sets id as w's X-Request-Id response header and, when ctx
// is an observed request's context (see Observe) that has no id yet,
// records it there too. It reports whether RequestID(ctx) now returns id;
// when not, the caller derives a context with WithRequestID. Call it
// before anything else reads the request id.
func SetRequestID(w http.ResponseWriter, ctx context.Context, id string) bool {
	c, ok := ctx.Value(routeKey{}).(*observedContext)
	if !ok || c.id != "" || id == "" {
		w.Header().Set("X-Request-Id", id)
		return false
	}
	c.id = id
	c.idHeader[0] = id
	w.Header()["X-Request-Id"] = c.idHeader[:1:1]
	return RequestID(ctx) == id
}
