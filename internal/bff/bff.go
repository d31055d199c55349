package bff

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/csrf"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/login"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/tokens"
)

// Options configure a Handler.
type Options struct {
	// Prefix is the endpoints' path prefix, such as "/bff".
	Prefix   string
	Provider *provider.Source
	Sessions *session.Manager
	Tokens   *tokens.Manager
	// CSRF checks API-style requests (the user endpoint); required.
	CSRF func(*http.Request) error
	// UserClaims, when not empty, limits the claims the user endpoint shows.
	UserClaims []string
	// RevokeOnLogout revokes the refresh token at logout (RFC 7009).
	RevokeOnLogout bool
	// PostLogoutRedirectURI is sent to the provider's end-session endpoint.
	PostLogoutRedirectURI string
	// IDTokenHint sends the ID token as id_token_hint on logout. It passes
	// through the browser's address bar, so it is off by default and
	// client_id identifies Gatehouse instead.
	IDTokenHint bool
	Logger      *slog.Logger
}

// Handler serves the user and logout endpoints. It is safe for concurrent use.
type Handler struct {
	opts Options
}

// New returns a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Provider == nil || opts.Sessions == nil || opts.Tokens == nil || opts.CSRF == nil {
		return nil, errors.New("bff: provider, sessions, tokens and csrf are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts}, nil
}

// Claim is one entry of the user endpoint's answer.
type Claim struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// hiddenClaims are protocol claims of the ID token that say nothing about
// the user and are not shown.
var hiddenClaims = []string{"nonce", "at_hash", "c_hash", "s_hash"}

// User serves GET <prefix>/user: the signed-in user's claims as a JSON
// array of {type, value}, with bff:logout_url, bff:session_expires_in and
// bff:session_state; 401 when not signed in. ?slide=false reads the session
// without extending it.
func (h *Handler) User(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		httpx.JSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "")
		return
	}
	if err := h.opts.CSRF(r); err != nil {
		csrf.Reject(w, r)
		return
	}
	ctx := r.Context()
	s, ok := h.load(w, r, r.URL.Query().Get("slide") != "false")
	if !ok {
		return
	}
	defer s.SlideWritten(ctx)
	// No "zombie" sessions: when the access token has run out, renew it
	// now, so a session whose refresh token is dead reads as signed out.
	if !s.Tokens.Expiry.IsZero() && !h.opts.Sessions.Now().Before(s.Tokens.Expiry) {
		if _, err := h.opts.Tokens.UserToken(ctx, s); errors.Is(err, tokens.ErrSessionEnded) {
			h.opts.Sessions.ClearCookie(w)
			httpx.JSONError(w, r, http.StatusUnauthorized, "login_required", "")
			return
		}
	}
	httpx.JSON(w, http.StatusOK, h.claims(s))
}

func (h *Handler) claims(s *session.Session) []Claim {
	names := make([]string, 0, len(s.Claims))
	for k := range s.Claims {
		if slices.Contains(hiddenClaims, k) {
			continue
		}
		if len(h.opts.UserClaims) > 0 && !slices.Contains(h.opts.UserClaims, k) {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]Claim, 0, len(names)+3)
	for _, k := range names {
		// A multi-valued claim is listed once per value, as Duende BFF does.
		if vs, ok := s.Claims[k].([]any); ok {
			for _, v := range vs {
				out = append(out, Claim{k, v})
			}
			continue
		}
		out = append(out, Claim{k, s.Claims[k]})
	}
	out = append(out, Claim{"bff:logout_url", h.LogoutURL(s)})
	expires := s.ExpiresAt(h.opts.Sessions.IdleTimeout()).Sub(h.opts.Sessions.Now())
	out = append(out, Claim{"bff:session_expires_in", int64(max(expires, 0) / time.Second)})
	if s.SessionState != "" {
		out = append(out, Claim{"bff:session_state", s.SessionState})
	}
	return out
}

// LogoutURL is the session's logout URL. Its sid is the provider's session
// id when the provider sent one, else the session's random handle, so that
// only the session's own frontend can log it out.
func (h *Handler) LogoutURL(s *session.Session) string {
	return h.opts.Prefix + "/logout?sid=" + url.QueryEscape(logoutSID(s))
}

func logoutSID(s *session.Session) string {
	if s.SID != "" {
		return s.SID
	}
	return s.Handle
}

// load returns the request's session or answers 401 (no session) or 503
// (store failure) itself. A caller that slides waits for the slide's write
// before it returns (Session.SlideWritten).
func (h *Handler) load(w http.ResponseWriter, r *http.Request, slide bool) (*session.Session, bool) {
	s, err := h.opts.Sessions.Load(r.Context(), r, slide)
	switch {
	case err == nil:
		return s, true
	case errors.Is(err, session.ErrNoSession), errors.Is(err, session.ErrExpired):
		httpx.JSONError(w, r, http.StatusUnauthorized, "login_required", "")
	default:
		h.opts.Logger.ErrorContext(r.Context(), "bff: load session", "err", err)
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "Sessions cannot be read right now.")
	}
	return nil, false
}

// Logout serves GET <prefix>/logout?sid=&returnUrl=. The sid must be the
// session's (so a cross-site link cannot log the user out); the session is
// deleted on the server, the refresh token revoked, the cookie cleared, and
// the browser sent to the provider's end-session endpoint, or to returnUrl
// when the provider has none.
func (h *Handler) Logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		httpx.Page(w, r, http.StatusMethodNotAllowed, "Method not allowed", "Sign-out is started with a GET request.", "")
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	returnURL := q.Get("returnUrl")
	if returnURL == "" {
		returnURL = "/"
	} else if !login.LocalPath(returnURL) {
		httpx.Page(w, r, http.StatusBadRequest, "Invalid return URL", "The return URL must be a path on this site.", "")
		return
	}
	s, err := h.opts.Sessions.Load(ctx, r, false)
	switch {
	case errors.Is(err, session.ErrNoSession), errors.Is(err, session.ErrExpired):
		// Already signed out: nothing to protect, finish cleanly.
		h.opts.Sessions.ClearCookie(w)
		httpx.NoStore(w.Header())
		http.Redirect(w, r, returnURL, http.StatusFound)
		return
	case err != nil:
		h.opts.Logger.ErrorContext(ctx, "bff: logout load session", "err", err)
		httpx.Page(w, r, http.StatusServiceUnavailable, "Sign-out unavailable", "Sign-out could not be completed right now. Please try again shortly.", "")
		return
	}
	if sid := q.Get("sid"); sid == "" || sid != logoutSID(s) {
		httpx.Page(w, r, http.StatusBadRequest, "Invalid sign-out request", "This sign-out link does not belong to your session.", "")
		return
	}
	if err := h.opts.Sessions.End(ctx, s, "logout"); err != nil {
		h.opts.Logger.ErrorContext(ctx, "bff: logout end session", "err", err)
		httpx.Page(w, r, http.StatusServiceUnavailable, "Sign-out unavailable", "Sign-out could not be completed right now. Please try again shortly.", "")
		return
	}
	h.opts.Sessions.ClearCookie(w)
	p, perr := h.opts.Provider.Get(ctx)
	if perr == nil && h.opts.RevokeOnLogout {
		h.revoke(ctx, p, s)
	}
	target := returnURL
	if perr == nil {
		hint := ""
		if h.opts.IDTokenHint {
			hint = s.Tokens.IDToken
		}
		if u := p.EndSessionURL(hint, h.opts.PostLogoutRedirectURI, ""); u != "" {
			target = u
		}
	}
	h.opts.Logger.InfoContext(ctx, "bff: session ended by logout", "session", s.Handle)
	httpx.NoStore(w.Header())
	http.Redirect(w, r, target, http.StatusFound)
}

// revoke revokes the session's refresh token, or its access token when it
// has none (RFC 7009). A failure is logged; the session is already gone.
func (h *Handler) revoke(ctx context.Context, p *provider.Provider, s *session.Session) {
	if p.Metadata().RevocationEndpoint == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	token, hint := s.Tokens.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = s.Tokens.AccessToken, "access_token"
	}
	if token == "" {
		return
	}
	if err := p.Revoke(ctx, token, hint); err != nil {
		h.opts.Logger.WarnContext(ctx, "bff: token revocation failed", "err", err)
	}
}
