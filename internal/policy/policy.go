package policy

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

// AssertionHeader carries the signed assertion upstream.
const AssertionHeader = "X-Gatehouse-Assertion"

// Signer signs an assertion for audience about subject sub with the extra
// claims. *assertion.Signer implements it.
type Signer interface {
	Sign(ctx context.Context, audience, sub string, extra map[string]any) (string, error)
}

// Options configure a Policy.
type Options struct {
	// Route names the route in metrics and logs.
	Route string
	// Require and Identity are the route's configuration.
	Require  config.Require
	Identity config.Identity
	// Audience is the assertions' aud: the route's audience, else its
	// upstream origin. Required with Identity.Assertion.
	Audience string
	// RequestedScopes are the scopes Gatehouse asks for at login: those
	// granted when the token response has no scope (RFC 6749 §5.1).
	RequestedScopes []string
	// Signer signs assertions. Required with Identity.Assertion.
	Signer Signer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refusals at debug level and signing failures; nil
	// discards.
	Logger *slog.Logger
	// OnDeny, when set, is called for each refused request with the route
	// and the reason: "login_required", "claims", "scopes", "acr" or
	// "max_age".
	OnDeny func(route, reason string)
}

// Policy checks and decorates requests on one route. It is safe for
// concurrent use.
type Policy struct {
	opts    Options
	require bool     // any condition set
	headers []header // identity headers, sorted by name
	claims  []string // claim names for the assertion
	acr     string   // space-separated, for step_up_required
}

type header struct{ name, claim string }

// New checks opts and returns the route's Policy.
func New(opts Options) (*Policy, error) {
	if opts.Identity.Assertion && (opts.Signer == nil || opts.Audience == "") {
		return nil, fmt.Errorf("policy: route %s: an assertion needs a signer and an audience", opts.Route)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := opts.Require
	p := &Policy{
		opts:    opts,
		require: len(r.Claims) > 0 || len(r.Scopes) > 0 || len(r.ACR) > 0 || r.MaxAge > 0,
		acr:     strings.Join(r.ACR, " "),
	}
	for name, claim := range opts.Identity.Headers {
		p.headers = append(p.headers, header{http.CanonicalHeaderKey(name), claim})
		if !slices.Contains(p.claims, claim) {
			p.claims = append(p.claims, claim)
		}
	}
	slices.SortFunc(p.headers, func(a, b header) int { return strings.Compare(a.name, b.name) })
	slices.Sort(p.claims)
	return p, nil
}

// HeaderNames returns the route's identity header names, which the proxy
// removes from inbound requests (proxy.Route.IdentityHeaders).
func (p *Policy) HeaderNames() []string {
	out := make([]string, len(p.headers))
	for i, h := range p.headers {
		out[i] = h.name
	}
	return out
}

// Denial is a request the route refuses, with the reason counted in
// metrics.
type Denial struct {
	// Reason is "login_required", "claims", "scopes", "acr" or "max_age".
	Reason string
}

func (d *Denial) Error() string { return "policy: refused: " + d.Reason }

// StepUp reports whether a new, stronger or fresher login can lift the
// refusal.
func (d *Denial) StepUp() bool { return d.Reason == "acr" || d.Reason == "max_age" }

// Check reports whether s (nil: no session) meets the route's conditions:
// nil, or a *Denial. claims and scopes are checked before acr and max_age,
// since a new login cannot grant what the user lacks.
func (p *Policy) Check(s *session.Session) error {
	if !p.require {
		return nil
	}
	if s == nil {
		return &Denial{Reason: "login_required"}
	}
	r := &p.opts.Require
	for name, want := range r.Claims {
		if !claimMatches(s.Claims[name], want) {
			return &Denial{Reason: "claims"}
		}
	}
	if len(r.Scopes) > 0 {
		granted := strings.Fields(s.Tokens.Scope)
		if len(granted) == 0 {
			granted = p.opts.RequestedScopes
		}
		for _, sc := range r.Scopes {
			if !slices.Contains(granted, sc) {
				return &Denial{Reason: "scopes"}
			}
		}
	}
	if len(r.ACR) > 0 && !slices.Contains(r.ACR, s.ACR) {
		return &Denial{Reason: "acr"}
	}
	if r.MaxAge > 0 && (s.AuthTime.IsZero() || p.opts.Now().Sub(s.AuthTime) > r.MaxAge) {
		return &Denial{Reason: "max_age"}
	}
	return nil
}

// Apply checks s and, when the route lets it through, adds the route's
// identity to cred and reports true. Otherwise it answers the request
// (see the package documentation) and reports false: nothing may then
// reach the upstream.
func (p *Policy) Apply(w http.ResponseWriter, r *http.Request, s *session.Session, cred *proxy.Credential) bool {
	if err := p.Check(s); err != nil {
		p.refuse(w, r, err.(*Denial))
		return false
	}
	if s == nil || (len(p.headers) == 0 && !p.opts.Identity.Assertion) {
		return true
	}
	h, err := p.Headers(r.Context(), s)
	if err != nil {
		p.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "policy: identity for upstream",
			slog.String("route", p.opts.Route), slog.Any("err", err))
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The identity for this API cannot be made right now.")
		return false
	}
	cred.Headers = h
	return true
}

// Headers returns the identity headers for s: those of identity.headers
// whose claim s has, and the assertion when the route asks for one.
func (p *Policy) Headers(ctx context.Context, s *session.Session) (http.Header, error) {
	h := make(http.Header, len(p.headers)+1)
	for _, hd := range p.headers {
		if v, ok := headerValue(claim(s, hd.claim)); ok {
			h[hd.name] = []string{v}
		}
	}
	if p.opts.Identity.Assertion {
		extra := make(map[string]any, len(p.claims))
		for _, c := range p.claims {
			if v := claim(s, c); v != nil {
				extra[c] = v
			}
		}
		a, err := p.opts.Signer.Sign(ctx, p.opts.Audience, s.Subject, extra)
		if err != nil {
			return nil, err
		}
		h[AssertionHeader] = []string{a}
	}
	return h, nil
}

// stepUp is the body of a step_up_required answer.
type stepUp struct {
	Error     string `json:"error"`
	ACRValues string `json:"acr_values,omitempty"`
	MaxAge    int64  `json:"max_age,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func (p *Policy) refuse(w http.ResponseWriter, r *http.Request, d *Denial) {
	if p.opts.OnDeny != nil {
		p.opts.OnDeny(p.opts.Route, d.Reason)
	}
	p.opts.Logger.LogAttrs(r.Context(), slog.LevelDebug, "policy: request refused",
		slog.String("route", p.opts.Route), slog.String("reason", d.Reason))
	switch {
	case d.Reason == "login_required":
		httpx.JSONError(w, r, http.StatusUnauthorized, "login_required", "")
	case d.StepUp():
		// Everything the route requires, so one login satisfies it all.
		httpx.JSON(w, http.StatusUnauthorized, stepUp{
			Error:     "step_up_required",
			ACRValues: p.acr,
			MaxAge:    int64(math.Ceil(p.opts.Require.MaxAge.Seconds())),
			RequestID: httpx.RequestID(r.Context()),
		})
	default:
		httpx.JSONError(w, r, http.StatusForbidden, "forbidden", "")
	}
}

// claim returns s's claim name; "sub" falls back to the session's subject.
func claim(s *session.Session, name string) any {
	if v, ok := s.Claims[name]; ok {
		return v
	}
	if name == "sub" && s.Subject != "" {
		return s.Subject
	}
	return nil
}

// claimMatches reports whether the claim value v equals one of want or,
// for an array, has an element that does.
func claimMatches(v any, want []string) bool {
	if arr, ok := v.([]any); ok {
		return slices.ContainsFunc(arr, func(e any) bool { return scalarMatches(e, want) })
	}
	return scalarMatches(v, want)
}

func scalarMatches(v any, want []string) bool {
	for _, w := range want {
		switch v := v.(type) {
		case string:
			if v == w {
				return true
			}
		case bool:
			if strings.EqualFold(w, strconv.FormatBool(v)) {
				return true
			}
		case float64:
			if f, err := strconv.ParseFloat(w, 64); err == nil && f == v {
				return true
			}
		}
	}
	return false
}

// headerValue is the text of claim value v for a header, and whether v
// can be sent.
func headerValue(v any) (string, bool) {
	var out string
	switch v := v.(type) {
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := scalarText(e)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		out = strings.Join(parts, ", ")
	default:
		s, ok := scalarText(v)
		if !ok {
			return "", false
		}
		out = s
	}
	if out == "" || strings.ContainsFunc(out, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return "", false
	}
	return out, true
}

func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}
