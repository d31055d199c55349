package bff

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/csrf"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

// Diagnostics is the answer of the diagnostics endpoint: what a developer
// needs to see of the app's state, and no value that could be replayed.
// It never holds a token, a cookie, a key or the client secret.
type Diagnostics struct {
	// Session is the caller's session, null when not signed in.
	Session *SessionDiagnostics `json:"session"`
	// Routes is the app's route table, in configuration order.
	Routes []RouteDiagnostics `json:"routes"`
	// Provider summarises the provider's discovery document.
	Provider ProviderDiagnostics `json:"provider"`
}

// SessionDiagnostics is what a session holds, tokens as metadata only.
type SessionDiagnostics struct {
	// Handle is the session's public name (as in the session list); it
	// cannot be turned into a cookie.
	Handle       string         `json:"handle"`
	Issuer       string         `json:"issuer"`
	Subject      string         `json:"subject"`
	SID          string         `json:"sid,omitempty"`
	SessionState string         `json:"session_state,omitempty"`
	Claims       map[string]any `json:"claims"`
	CreatedAt    time.Time      `json:"created_at"`
	LastSeen     time.Time      `json:"last_seen"`
	// ExpiresAt is when the session ends if it is not used again;
	// AbsoluteExpiry when it ends whatever its use.
	ExpiresAt      time.Time         `json:"expires_at"`
	AbsoluteExpiry time.Time         `json:"absolute_expiry"`
	Tokens         TokensDiagnostics `json:"tokens"`
}

// TokensDiagnostics describes the session's tokens without their values.
type TokensDiagnostics struct {
	AccessToken AccessTokenDiagnostics `json:"access_token"`
	// HasRefreshToken and HasIDToken say whether the session holds one.
	HasRefreshToken bool `json:"has_refresh_token"`
	HasIDToken      bool `json:"has_id_token"`
}

// AccessTokenDiagnostics describes the session's access token.
type AccessTokenDiagnostics struct {
	Present bool `json:"present"`
	// TokenType is the token_type the provider gave (RFC 6749 §7.1):
	// "Bearer", or "DPoP" for a sender-constrained token (RFC 9449 §5).
	TokenType string `json:"token_type,omitempty"`
	// ExpiresAt and ExpiresIn (seconds, negative once expired) are absent
	// when the provider gave no expires_in.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	ExpiresIn *int64     `json:"expires_in,omitempty"`
	Scope     string     `json:"scope,omitempty"`
	// SenderConstrained is true when the session holds a DPoP key, so that
	// every use of the token carries a proof (RFC 9449 §7.1).
	SenderConstrained bool `json:"sender_constrained"`
}

// RouteDiagnostics is one API route. Upstream is the upstream's origin
// only: a URL's user information could hold a credential.
type RouteDiagnostics struct {
	Prefix        string           `json:"prefix"`
	Upstream      string           `json:"upstream"`
	Token         config.TokenMode `json:"token"`
	Audience      string           `json:"audience,omitempty"`
	Resource      string           `json:"resource,omitempty"`
	TokenExchange bool             `json:"token_exchange"`
	StripPrefix   bool             `json:"strip_prefix"`
	Methods       []string         `json:"methods"`
}

// ProviderDiagnostics summarises the provider's discovery document
// (OpenID Connect Discovery 1.0 §3). Error is set instead when discovery
// has not succeeded.
type ProviderDiagnostics struct {
	Error    string `json:"error,omitempty"`
	Issuer   string `json:"issuer,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// Endpoints says which endpoints the provider advertises.
	Endpoints map[string]bool `json:"endpoints,omitempty"`
	// IDTokenSigningAlgs are the provider's; AcceptedSigningAlgs are the
	// ones Gatehouse verifies ID tokens with.
	IDTokenSigningAlgs   []string `json:"id_token_signing_alg_values_supported,omitempty"`
	AcceptedSigningAlgs  []string `json:"accepted_signing_algs,omitempty"`
	CodeChallengeMethods []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuth    []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	GrantTypes           []string `json:"grant_types_supported,omitempty"`
	Scopes               []string `json:"scopes_supported,omitempty"`
	// PromptValues is the provider's prompt_values_supported, as listed.
	PromptValues []string `json:"prompt_values_supported,omitempty"`
	// DPoP is true when the provider accepts the ES256 proofs Gatehouse
	// makes (RFC 9449 §5.1).
	DPoP                     bool     `json:"dpop_supported"`
	DPoPSigningAlgs          []string `json:"dpop_signing_alg_values_supported,omitempty"`
	IssParameter             bool     `json:"authorization_response_iss_parameter_supported"`
	BackchannelLogout        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSession bool     `json:"backchannel_logout_session_supported"`
}

// Diagnostics returns the handler of GET <prefix>/diagnostics for an app
// with routes, to be mounted only when bff.diagnostics is on. It is for
// development: it answers only callers whose TCP peer is a loopback
// address and whose request no proxy relayed (403 otherwise; forwarding
// headers are never trusted to make a caller local), and it needs the
// anti-forgery header as the user endpoint does (403). It reads the session
// without extending it.
func (h *Handler) Diagnostics(routes []config.Route) http.Handler {
	table := make([]RouteDiagnostics, 0, len(routes))
	for _, r := range routes {
		table = append(table, RouteDiagnostics{
			Prefix: r.Prefix, Upstream: origin(r.Upstream), Token: r.Token,
			Audience: r.Audience, Resource: r.Resource, TokenExchange: r.TokenExchange,
			StripPrefix: r.StripPrefix, Methods: nonNil(r.Methods),
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.diagnostics(w, r, table)
	})
}

func (h *Handler) diagnostics(w http.ResponseWriter, r *http.Request, table []RouteDiagnostics) {
	ctx := r.Context()
	// A request a proxy relayed comes from loopback when the proxy runs on
	// this host, whoever sent it: refuse it rather than believe its
	// forwarding headers.
	if !httpx.FromLoopback(r) || r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" {
		h.opts.Logger.WarnContext(ctx, "bff: diagnostics refused to a caller not on loopback", "remote", r.RemoteAddr)
		httpx.JSONError(w, r, http.StatusForbidden, "access_denied", "Diagnostics answer direct loopback callers only.")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		httpx.JSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "")
		return
	}
	if err := h.opts.CSRF(r); err != nil {
		csrf.Reject(w, r)
		return
	}
	out := Diagnostics{Routes: table}
	s, err := h.opts.Sessions.Load(ctx, r, false)
	switch {
	case err == nil:
		out.Session = h.sessionDiagnostics(s)
	case !isNoSession(err):
		h.opts.Logger.ErrorContext(ctx, "bff: diagnostics load session", "err", err)
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "Sessions cannot be read right now.")
		return
	}
	p, err := h.opts.Provider.Get(ctx)
	if err != nil {
		h.opts.Logger.WarnContext(ctx, "bff: diagnostics provider discovery", "err", err)
		out.Provider = ProviderDiagnostics{Error: "discovery_unavailable"}
	} else {
		out.Provider = providerDiagnostics(p)
	}
	httpx.JSON(w, http.StatusOK, out)
}

func (h *Handler) sessionDiagnostics(s *session.Session) *SessionDiagnostics {
	t := s.Tokens
	at := AccessTokenDiagnostics{
		Present:           t.AccessToken != "",
		TokenType:         t.TokenType,
		Scope:             t.Scope,
		SenderConstrained: len(s.DPoPKey) > 0,
	}
	if !t.Expiry.IsZero() {
		exp := t.Expiry.UTC()
		in := int64(t.Expiry.Sub(h.opts.Sessions.Now()) / time.Second)
		at.ExpiresAt, at.ExpiresIn = &exp, &in
	}
	claims := s.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	return &SessionDiagnostics{
		Handle: s.Handle, Issuer: s.Issuer, Subject: s.Subject, SID: s.SID, SessionState: s.SessionState,
		Claims:    claims,
		CreatedAt: s.CreatedAt, LastSeen: s.LastSeen,
		ExpiresAt: s.ExpiresAt(h.opts.Sessions.IdleTimeout()), AbsoluteExpiry: s.AbsoluteExpiry,
		Tokens: TokensDiagnostics{AccessToken: at, HasRefreshToken: t.RefreshToken != "", HasIDToken: t.IDToken != ""},
	}
}

func providerDiagnostics(p *provider.Provider) ProviderDiagnostics {
	m := p.Metadata()
	return ProviderDiagnostics{
		Issuer:   p.Issuer(),
		ClientID: p.ClientID(),
		Endpoints: map[string]bool{
			"authorization": m.AuthorizationEndpoint != "",
			"token":         m.TokenEndpoint != "",
			"userinfo":      m.UserinfoEndpoint != "",
			"jwks":          m.JWKSURI != "",
			"end_session":   m.EndSessionEndpoint != "",
			"revocation":    m.RevocationEndpoint != "",
		},
		IDTokenSigningAlgs:       m.IDTokenSigningAlgValuesSupported,
		AcceptedSigningAlgs:      p.SigningAlgs(),
		CodeChallengeMethods:     m.CodeChallengeMethodsSupported,
		TokenEndpointAuth:        m.TokenEndpointAuthMethodsSupported,
		GrantTypes:               m.GrantTypesSupported,
		Scopes:                   m.ScopesSupported,
		PromptValues:             m.PromptValuesSupported,
		DPoP:                     p.SupportsDPoP(),
		DPoPSigningAlgs:          m.DPoPSigningAlgValuesSupported,
		IssParameter:             m.IssParameterSupported,
		BackchannelLogout:        m.BackchannelLogoutSupported,
		BackchannelLogoutSession: m.BackchannelLogoutSessionSupported,
	}
}

func isNoSession(err error) bool {
	return errors.Is(err, session.ErrNoSession) || errors.Is(err, session.ErrExpired)
}

// origin returns raw's scheme and host, dropping user information, path
// and query.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
