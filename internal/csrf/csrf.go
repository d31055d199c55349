package csrf

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// Errors returned by [Protection.Check]. Branch on them with errors.Is.
var (
	// ErrMissingHeader means the anti-forgery header is absent, repeated or
	// has a value other than the configured one.
	ErrMissingHeader = errors.New("csrf: anti-forgery header missing or wrong")
	// ErrCrossOrigin means Origin or Sec-Fetch-Site show a cross-origin request.
	ErrCrossOrigin = errors.New("csrf: cross-origin request")
	// ErrMissingOrigin means a WebSocket handshake came without an Origin header.
	ErrMissingOrigin = errors.New("csrf: websocket handshake without origin")
)

// Options configures a [Protection].
type Options struct {
	// HeaderName is the anti-forgery request header (bff.csrf_header).
	// Required.
	HeaderName string
	// HeaderValue is the value the header must have (bff.csrf_value).
	// Required.
	HeaderValue string
	// Origin is Gatehouse's public origin, "scheme://host[:port]", such as
	// "https://app.example". A trailing "/" is accepted. Required.
	Origin string
	// TrustedOrigins are further origins whose pages may call the API, for
	// an application served from another origin than Gatehouse.
	TrustedOrigins []string
	// OnReject, when set, is called for every rejected request with the
	// reason: "header", "cross_origin" or "websocket_origin".
	OnReject func(reason string)
}

// Protection checks API requests for cross-site request forgery. It is safe
// for concurrent use.
type Protection struct {
	header   string
	value    string
	origin   string
	trusted  []string
	onReject func(string)
}

// New returns a Protection configured by opts.
func New(opts Options) (*Protection, error) {
	p := &Protection{
		header:   http.CanonicalHeaderKey(opts.HeaderName),
		value:    opts.HeaderValue,
		onReject: opts.OnReject,
	}
	if p.value == "" {
		return nil, errors.New("csrf: a header value is required")
	}
	if !httpx.ValidToken(p.header) {
		return nil, fmt.Errorf("csrf: invalid header name %q", opts.HeaderName)
	}
	if opts.Origin == "" {
		return nil, errors.New("csrf: origin is required")
	}
	o, err := configOrigin(opts.Origin)
	if err != nil {
		return nil, err
	}
	p.origin = o
	for _, t := range opts.TrustedOrigins {
		o, err := configOrigin(t)
		if err != nil {
			return nil, err
		}
		if o != p.origin && !slices.Contains(p.trusted, o) {
			p.trusted = append(p.trusted, o)
		}
	}
	return p, nil
}

// configOrigin parses a configured origin, allowing one trailing slash.
func configOrigin(s string) (string, error) {
	o, err := ParseOrigin(strings.TrimSuffix(s, "/"))
	if err != nil {
		return "", fmt.Errorf("csrf: configured origin %q: %w", s, err)
	}
	return o, nil
}

// Check reports whether r passes the anti-forgery rules described in the
// package documentation. The returned error wraps [ErrMissingHeader],
// [ErrCrossOrigin] or [ErrMissingOrigin].
func (p *Protection) Check(r *http.Request) error {
	err := p.check(r)
	if err != nil && p.onReject != nil {
		reason := "cross_origin"
		switch {
		case errors.Is(err, ErrMissingHeader):
			reason = "header"
		case errors.Is(err, ErrMissingOrigin):
			reason = "websocket_origin"
		}
		p.onReject(reason)
	}
	return err
}

func (p *Protection) check(r *http.Request) error {
	origins := r.Header.Values("Origin")
	if len(origins) > 1 {
		return fmt.Errorf("%w: several origin headers", ErrCrossOrigin)
	}
	hasOrigin := len(origins) == 1
	trusted := false
	if hasOrigin {
		o, err := ParseOrigin(origins[0])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCrossOrigin, err)
		}
		switch {
		case o == p.origin:
		case slices.Contains(p.trusted, o):
			trusted = true
		default:
			return fmt.Errorf("%w: origin not allowed", ErrCrossOrigin)
		}
	}

	if httpx.IsWebSocket(r) {
		if !hasOrigin {
			return ErrMissingOrigin
		}
	} else {
		v := r.Header.Values(p.header)
		if len(v) != 1 || v[0] != p.value {
			return ErrMissingHeader
		}
	}

	sites := r.Header.Values("Sec-Fetch-Site")
	if len(sites) > 1 {
		return fmt.Errorf("%w: several sec-fetch-site headers", ErrCrossOrigin)
	}
	if len(sites) == 1 {
		switch sites[0] {
		case "same-origin":
		case "same-site", "cross-site":
			if !trusted {
				return fmt.Errorf("%w: sec-fetch-site %s", ErrCrossOrigin, sites[0])
			}
		case "none":
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				return fmt.Errorf("%w: sec-fetch-site none on %s", ErrCrossOrigin, r.Method)
			}
		default:
			return fmt.Errorf("%w: unknown sec-fetch-site", ErrCrossOrigin)
		}
	}
	return nil
}

// Handler returns a handler that runs next only for requests passing
// [Protection.Check] and answers others with [Reject].
func (p *Protection) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.Check(r); err != nil {
			Reject(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Reject answers a request that failed Check: 403 with the JSON error
// "csrf_failed".
func Reject(w http.ResponseWriter, r *http.Request) {
	httpx.JSONError(w, r, http.StatusForbidden, "csrf_failed", "The anti-forgery header is missing or the request is cross-site.")
}
