package login

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

// Options configure a Handler.
type Options struct {
	Provider *provider.Source
	Sessions *session.Manager
	// Ring seals transaction cookies; derive it for this use only.
	Ring *seal.Ring
	// UserInfo merges UserInfo claims into the session at login.
	UserInfo bool
	// DPoP asks for sender-constrained tokens (RFC 9449) when the provider
	// supports them; the HTTP client must use dpop.Transport.
	DPoP bool
	// AuthParams are extra static authorization request parameters.
	AuthParams map[string]string
	Logger     *slog.Logger
	Now        func() time.Time
	// OnLogin, when set, is called after a session was created.
	OnLogin func(ctx context.Context, s *session.Session)
}

// Handler serves the login and callback endpoints. It is safe for
// concurrent use.
type Handler struct {
	opts Options
}

// New returns a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Provider == nil || opts.Sessions == nil || opts.Ring == nil {
		return nil, errors.New("login: provider, sessions and ring are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{opts: opts}, nil
}

// promptValues are the OpenID Connect Core §3.1.2.1 prompt values a
// frontend may ask for.
var promptValues = []string{"none", "login", "consent", "select_account", "create"}

// Login starts a login: GET <prefix>/login?returnUrl=&prompt=. It answers
// 400 for a non-local returnUrl or an unsupported prompt, else redirects to
// the provider's authorization endpoint.
func (h *Handler) Login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.Page(w, r, http.StatusMethodNotAllowed, "Method not allowed", "Sign-in is started with a GET request.", "")
		return
	}
	q := r.URL.Query()
	returnURL := q.Get("returnUrl")
	if returnURL == "" {
		returnURL = "/"
	} else if !LocalPath(returnURL) {
		httpx.Page(w, r, http.StatusBadRequest, "Invalid return URL", "The return URL must be a path on this site.", "")
		return
	}
	p, err := h.opts.Provider.Get(r.Context())
	if err != nil {
		h.opts.Logger.ErrorContext(r.Context(), "login: provider unavailable", "err", err)
		httpx.Page(w, r, http.StatusServiceUnavailable, "Sign-in unavailable", "The identity provider cannot be reached right now. Please try again shortly.", "")
		return
	}
	prompt := q.Get("prompt")
	if prompt != "" && (!slices.Contains(promptValues, prompt) || !p.SupportsPrompt(prompt)) {
		httpx.Page(w, r, http.StatusBadRequest, "Invalid prompt", "The identity provider does not support that prompt value.", "")
		return
	}
	tx := &transaction{
		State:     session.NewID(),
		Nonce:     session.NewID(),
		Verifier:  session.NewID() + session.NewID()[:21], // 64 characters of 43..128 (RFC 7636 §4.1)
		ReturnURL: returnURL,
		Prompt:    prompt,
		Expires:   h.opts.Now().Add(txTTL),
	}
	value, err := sealTx(h.opts.Ring, tx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.SetCookie(w, txCookie(txCookieName(tx.State), value, int(txTTL/time.Second)))
	target := p.AuthCodeURL(provider.AuthRequest{
		State: tx.State, Nonce: tx.Nonce, Verifier: tx.Verifier, Prompt: prompt, Extra: h.opts.AuthParams,
	})
	httpx.NoStore(w.Header())
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusFound)
}

// Callback finishes a login: GET <prefix>/callback?code=&state=[&iss=].
func (h *Handler) Callback(w http.ResponseWriter, r *http.Request) {
	// RFC 9700 §4.2.4: the callback leaks nothing through Referer.
	w.Header().Set("Referrer-Policy", "no-referrer")
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if r.Method != http.MethodGet || state == "" || len(state) > 256 {
		h.reject(w, r, "callback without a state", nil)
		return
	}
	tx, err := openTx(h.opts.Ring, r, state, h.opts.Now())
	// The transaction cookie is spent whatever happens next.
	http.SetCookie(w, txCookie(txCookieName(state), "", -1))
	if err != nil {
		h.reject(w, r, "callback state matches no transaction of this browser", err)
		return
	}
	first, err := h.opts.Sessions.Once(ctx, "state:"+stateID(state), txTTL)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !first {
		h.reject(w, r, "callback state replayed", nil)
		return
	}
	p, err := h.opts.Provider.Get(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// RFC 9207: check iss before acting on anything else in the response,
	// error responses included.
	if err := p.CheckIssParam(q); err != nil {
		h.reject(w, r, "authorization response iss check failed", err)
		return
	}
	if code := q.Get("error"); code != "" {
		h.providerError(w, r, tx, code)
		return
	}
	authCode := q.Get("code")
	if authCode == "" {
		h.reject(w, r, "callback without a code", nil)
		return
	}
	// RFC 9700 §2.2.1: sender-constrain the session's tokens with a key of
	// its own when the provider supports DPoP.
	var dk *dpop.Key
	if h.opts.DPoP && p.SupportsDPoP() {
		if dk, err = dpop.NewKey(); err != nil {
			h.fail(w, r, err)
			return
		}
		ctx = dpop.WithKey(ctx, dk)
	}
	tok, id, err := p.Exchange(ctx, authCode, tx.Verifier, tx.Nonce)
	if err != nil {
		var ve *provider.ValidationError
		if errors.As(err, &ve) {
			h.reject(w, r, "id token rejected", err)
		} else {
			h.fail(w, r, err)
		}
		return
	}
	claims := id.Claims
	if h.opts.UserInfo && p.Metadata().UserinfoEndpoint != "" {
		uc, err := p.UserInfo(ctx, tok.AccessToken, tok.TokenType, id.Subject)
		if err != nil {
			h.reject(w, r, "userinfo rejected", err)
			return
		}
		for k, v := range uc {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	s := &session.Session{
		Issuer:       id.Issuer,
		Subject:      id.Subject,
		SID:          id.SID,
		SessionState: q.Get("session_state"),
		Claims:       claims,
		Tokens: session.Tokens{
			AccessToken:  tok.AccessToken,
			TokenType:    tok.TokenType,
			RefreshToken: tok.RefreshToken,
			IDToken:      id.Raw,
			Expiry:       tok.Expiry,
		},
		UserAgent: coarseUserAgent(r.UserAgent()),
	}
	if sc, ok := tok.Extra("scope").(string); ok {
		s.Tokens.Scope = sc
	}
	if dk != nil && strings.EqualFold(tok.TokenType, "DPoP") {
		if s.DPoPKey, err = dk.Marshal(); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	// A session the browser already had is ended: the new login always gets
	// a new id (no fixation) and the old one must not linger.
	if old, err := h.opts.Sessions.Load(ctx, r, false); err == nil {
		h.opts.Sessions.End(ctx, old, "relogin")
	}
	value, err := h.opts.Sessions.Create(ctx, s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.opts.Sessions.SetCookie(w, value)
	if h.opts.OnLogin != nil {
		h.opts.OnLogin(ctx, s)
	}
	h.opts.Logger.InfoContext(ctx, "login: session started", "sub", s.Subject, "session", s.Handle)
	httpx.NoStore(w.Header())
	http.Redirect(w, r, tx.ReturnURL, http.StatusFound)
}

// providerError handles an error authorization response (RFC 6749 §4.1.2.1).
// A silent login (prompt=none) that needs interaction returns to the app
// with the error code in the query, so the SPA can decide what to do.
func (h *Handler) providerError(w http.ResponseWriter, r *http.Request, tx *transaction, code string) {
	h.opts.Logger.InfoContext(r.Context(), "login: provider answered with an error", "provider_error", code)
	if tx.Prompt == "none" && slices.Contains([]string{"login_required", "interaction_required", "consent_required", "account_selection_required"}, code) {
		u, _ := url.Parse(tx.ReturnURL)
		q := u.Query()
		q.Set("error", code)
		u.RawQuery = q.Encode()
		httpx.NoStore(w.Header())
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	}
	msg := "The identity provider did not sign you in."
	if code == "access_denied" {
		msg = "Sign-in was cancelled or denied."
	}
	httpx.Page(w, r, http.StatusForbidden, "Sign-in failed", msg, "/")
}

// reject answers a callback that fails a security check: 400, a plain page,
// no session; the detail goes only to the log.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.opts.Logger.WarnContext(r.Context(), "login: "+what, "err", err)
	httpx.Page(w, r, http.StatusBadRequest, "Sign-in failed", "The sign-in response could not be verified. Please start again.", "/")
}

// fail answers an internal or provider failure: 502/503, a plain page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.opts.Logger.ErrorContext(r.Context(), "login: failed", "err", err)
	httpx.Page(w, r, http.StatusServiceUnavailable, "Sign-in unavailable", "Sign-in could not be completed right now. Please try again shortly.", "/")
}

// coarseUserAgent reduces a User-Agent to browser and platform names, for
// session lists.
func coarseUserAgent(ua string) string {
	browser, platform := "", ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Chromium/", "Chromium"}, {"Safari/", "Safari"}, {"curl/", "curl"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, p := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iOS"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, p.token) {
			platform = p.name
			break
		}
	}
	switch {
	case browser == "" && platform == "":
		return "unknown"
	case platform == "":
		return browser
	case browser == "":
		return platform
	}
	return browser + " on " + platform
}
