package login

import (
	"context"
	"errors"
	"log/slog"
	"maps"
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
	// AllowedACR and AllowedMaxAge are the acr_values and max_age a login
	// may ask for (a step-up): those some route requires. A login asking
	// for any other value gets 400; empty lists allow none.
	AllowedACR    []string
	AllowedMaxAge []time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
	// OnLogin, when set, is called after a session was created.
	OnLogin func(ctx context.Context, s *session.Session)
}

// Handler serves the login and callback endpoints. It is safe for
// concurrent use.
type Handler struct {
	opts Options
	// txPrefix starts the names of the app's transaction cookies: the
	// session cookie's name and "-tx-", so each app's logins are bounded
	// and cleared on their own, and every Gatehouse cookie shares the
	// session cookie's name as a prefix (which the proxy strips).
	txPrefix string
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
	return &Handler{opts: opts, txPrefix: opts.Sessions.CookieName() + "-tx-"}, nil
}

// Login starts a login: GET <prefix>/login?returnUrl=&prompt=
// [&acr_values=&max_age=]. It answers 400 for a non-local returnUrl, a
// prompt that is neither an OpenID Connect Core value nor listed by the
// provider, or acr_values or max_age that no route requires, else redirects
// to the provider's authorization endpoint. With acr_values or max_age it
// is a step-up: the callback checks the ID token against them and, when the
// check fails, returns to returnUrl?error=step_up_failed with the session
// unchanged. prompt=none in a frame is a silent
// login, as SilentLogin (Duende BFF v4 starts its silent login that way
// too); at the top level it returns to returnUrl?error=login_required when
// the provider needs the user.
func (h *Handler) Login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.Page(w, r, http.StatusMethodNotAllowed, "Method not allowed", "Sign-in is started with a GET request.", "")
		return
	}
	q := r.URL.Query()
	if q.Get("prompt") == "none" && framed(r) {
		h.SilentLogin(w, r)
		return
	}
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
	prompt, ok := parsePrompt(q.Get("prompt"), p.Metadata().PromptValuesSupported)
	if !ok {
		httpx.Page(w, r, http.StatusBadRequest, "Invalid prompt", "The identity provider does not support that prompt value.", "")
		return
	}
	su, ok := parseStepUp(q, h.opts.AllowedACR, h.opts.AllowedMaxAge)
	if !ok {
		httpx.Page(w, r, http.StatusBadRequest, "Invalid sign-in request", "The requested authentication level is not one this site asks for.", "")
		return
	}
	tx := &transaction{ReturnURL: returnURL, Prompt: prompt, ACRValues: su.ACRValues, MaxAge: su.MaxAge}
	if err := h.start(w, r, p, tx); err != nil {
		h.fail(w, r, err)
	}
}

// SilentLogin starts a silent login: GET <prefix>/silent-login, loaded by
// the SPA in a hidden iframe (Duende BFF's protocol). It sends a
// prompt=none authorization request (OpenID Connect Core §3.1.2.1); the
// callback answers a page that tells the parent frame whether the user is
// signed in (see silentResult). The callback is the usual redirect URI: the
// transaction says the login is silent, so no second redirect URI has to be
// registered with the provider.
func (h *Handler) SilentLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.silentResult(w, r, false)
		return
	}
	p, err := h.opts.Provider.Get(r.Context())
	if err != nil {
		h.opts.Logger.ErrorContext(r.Context(), "login: provider unavailable for a silent login", "err", err)
		h.silentResult(w, r, false)
		return
	}
	if err := h.start(w, r, p, &transaction{ReturnURL: "/", Prompt: "none", Silent: true}); err != nil {
		h.opts.Logger.ErrorContext(r.Context(), "login: silent login not started", "err", err)
		h.silentResult(w, r, false)
	}
}

// start fills in tx's secrets, keeps it in a cookie (dropping the oldest
// pending transactions beyond the bounds) and redirects to the provider.
func (h *Handler) start(w http.ResponseWriter, r *http.Request, p *provider.Provider, tx *transaction) error {
	now := h.opts.Now()
	pend := h.pending(r, now)
	tx.State = session.NewID()
	tx.Nonce = session.NewID()
	tx.Verifier = session.NewID() + session.NewID()[:21] // 64 characters of 43..128 (RFC 7636 §4.1)
	tx.Expires = now.Add(txTTL)
	tx.Seq = nextSeq(pend)
	name := txCookieName(h.txPrefix, tx.State)
	value, err := sealTx(h.opts.Ring, h.txPrefix, tx)
	if err != nil {
		return err
	}
	if err := h.dropOldest(r.Context(), w, pend, len(name)+1+len(value)); err != nil {
		return err
	}
	http.SetCookie(w, txCookie(name, value, int(txTTL/time.Second)))
	target := p.AuthCodeURL(provider.AuthRequest{
		State: tx.State, Nonce: tx.Nonce, Verifier: tx.Verifier, Prompt: tx.Prompt, Extra: h.authParams(tx),
	})
	httpx.NoStore(w.Header())
	if tx.Silent {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'self'")
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

// authParams are the extra authorization request parameters for tx.
func (h *Handler) authParams(tx *transaction) map[string]string {
	su := tx.stepUp()
	if !su.asked() {
		return h.opts.AuthParams
	}
	m := maps.Clone(h.opts.AuthParams)
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, su.params())
	return m
}

// framed reports whether the browser loads r into a frame (Fetch Metadata,
// Sec-Fetch-Dest). Browsers that do not send the header are told apart by
// the endpoint they load: SilentLogin always means a frame.
func framed(r *http.Request) bool {
	d := r.Header.Get("Sec-Fetch-Dest")
	return d == "iframe" || d == "frame"
}

// failure is why a callback did not sign the browser in.
type failure struct {
	// what says it for the log; err is the detail, if any.
	what string
	err  error
	// providerCode is the error code of an error authorization response
	// (RFC 6749 §4.1.2.1).
	providerCode string
	// internal marks a store or provider outage (503) rather than a
	// response that failed a check (400).
	internal bool
	// stepUp marks a step-up whose ID token did not give what was asked.
	stepUp bool
}

// Callback finishes a login: GET <prefix>/callback?code=&state=[&iss=].
func (h *Handler) Callback(w http.ResponseWriter, r *http.Request) {
	// RFC 9700 §4.2.4: the callback leaks nothing through Referer.
	w.Header().Set("Referrer-Policy", "no-referrer")
	tx, f := h.complete(w, r)
	// A silent login answers the parent frame whatever happened. A callback
	// that names no transaction of this browser, in a frame, is answered
	// the same way, so the SPA is not left waiting.
	silent := (tx != nil && tx.Silent) || (tx == nil && framed(r))
	switch {
	case silent:
		if f != nil {
			h.logFailure(r, f, tx)
		}
		h.silentResult(w, r, f == nil)
	case f == nil:
		httpx.NoStore(w.Header())
		http.Redirect(w, r, tx.ReturnURL, http.StatusFound)
	case f.providerCode != "":
		h.providerError(w, r, tx, f.providerCode)
	case f.internal:
		h.fail(w, r, f.err)
	case f.stepUp:
		h.opts.Logger.WarnContext(r.Context(), "login: step-up failed: "+f.what)
		httpx.NoStore(w.Header())
		http.Redirect(w, r, withError(tx.ReturnURL, "step_up_failed"), http.StatusFound)
	default:
		h.reject(w, r, f.what, f.err)
	}
}

// complete checks the authorization response and, when it is good, creates
// the session and sets its cookie. It returns the transaction when one was
// found, and why the login failed, or nil.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request) (*transaction, *failure) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if r.Method != http.MethodGet || state == "" || len(state) > 256 {
		return nil, &failure{what: "callback without a state"}
	}
	txName := txCookieName(h.txPrefix, state)
	tx, err := openTx(h.opts.Ring, h.txPrefix, r, state, h.opts.Now())
	// The transaction cookie is spent whatever happens next.
	http.SetCookie(w, txCookie(txName, "", -1))
	if err != nil {
		return nil, &failure{what: "callback state matches no transaction of this browser", err: err}
	}
	// RFC 9700 §4.2.4: state is invalid after first use. A state dropped
	// because later logins displaced it is recorded the same way.
	first, err := h.opts.Sessions.Once(ctx, onceKey(stateID(state)), txTTL)
	if err != nil {
		return tx, &failure{what: "state not recorded", err: err, internal: true}
	}
	if !first {
		return tx, &failure{what: "callback state replayed"}
	}
	p, err := h.opts.Provider.Get(ctx)
	if err != nil {
		return tx, &failure{what: "provider unavailable", err: err, internal: true}
	}
	// RFC 9207: check iss before acting on anything else in the response,
	// error responses included.
	if err := p.CheckIssParam(q); err != nil {
		return tx, &failure{what: "authorization response iss check failed", err: err}
	}
	if code := q.Get("error"); code != "" {
		return tx, &failure{what: "provider answered with an error", providerCode: code}
	}
	authCode := q.Get("code")
	if authCode == "" {
		return tx, &failure{what: "callback without a code"}
	}
	// RFC 9700 §2.2.1: sender-constrain the session's tokens with a key of
	// its own when the provider supports DPoP.
	var dk *dpop.Key
	if h.opts.DPoP && p.SupportsDPoP() {
		if dk, err = dpop.NewKey(); err != nil {
			return tx, &failure{what: "dpop key", err: err, internal: true}
		}
		ctx = dpop.WithKey(ctx, dk)
	}
	tok, id, err := p.Exchange(ctx, authCode, tx.Verifier, tx.Nonce)
	if err != nil {
		var ve *provider.ValidationError
		return tx, &failure{what: "id token rejected", err: err, internal: !errors.As(err, &ve)}
	}
	if why := tx.stepUp().check(id, h.opts.Now()); why != "" {
		return tx, &failure{what: why, stepUp: true}
	}
	acr, authTime, _ := idTokenAuth(id)
	claims := id.Claims
	if h.opts.UserInfo && p.Metadata().UserinfoEndpoint != "" {
		uc, err := p.UserInfo(ctx, tok.AccessToken, tok.TokenType, id.Subject)
		if err != nil {
			return tx, &failure{what: "userinfo rejected", err: err}
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
		ACR:          acr,
		AuthTime:     authTime,
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
			return tx, &failure{what: "dpop key", err: err, internal: true}
		}
	}
	// The new login always gets a new id (no fixation; OWASP ASVS V3.2.1),
	// and a session the browser already had ends once the new one exists.
	// A step-up of the same user is a change of privilege, which rotates
	// the id the same way; another user's login is a new session.
	old, _ := h.opts.Sessions.Load(ctx, r, false)
	value, err := h.opts.Sessions.Create(ctx, s)
	if err != nil {
		return tx, &failure{what: "session not created", err: err, internal: true}
	}
	if old != nil {
		reason := "relogin"
		if tx.stepUp().asked() && old.Issuer == s.Issuer && old.Subject == s.Subject {
			reason = "step_up"
		}
		if err := h.opts.Sessions.End(ctx, old, reason); err != nil {
			h.opts.Logger.WarnContext(ctx, "login: previous session not ended", "err", err)
		}
	}
	h.opts.Sessions.SetCookie(w, value)
	// Completing a login ends the app's other pending logins in this
	// browser: their callbacks would replace the session just made.
	others := slices.DeleteFunc(h.pending(r, h.opts.Now()), func(p pendingTx) bool { return p.name == txName })
	if err := h.drop(ctx, w, others); err != nil {
		h.opts.Logger.WarnContext(ctx, "login: pending transactions not spent", "err", err)
	}
	if h.opts.OnLogin != nil {
		h.opts.OnLogin(ctx, s)
	}
	h.opts.Logger.InfoContext(ctx, "login: session started", "sub", s.Subject, "session", s.Handle, "silent", tx.Silent)
	return tx, nil
}

// interactionNeeded are the error codes with which a provider answers
// prompt=none when it cannot sign the user in without them
// (OpenID Connect Core §3.1.2.6).
var interactionNeeded = []string{"login_required", "interaction_required", "consent_required", "account_selection_required"}

// providerError handles an error authorization response (RFC 6749 §4.1.2.1).
// A silent login (prompt=none) that needs interaction returns to the app
// with the error code in the query, so the SPA can decide what to do.
func (h *Handler) providerError(w http.ResponseWriter, r *http.Request, tx *transaction, code string) {
	h.opts.Logger.InfoContext(r.Context(), "login: provider answered with an error", "provider_error", code)
	if tx.Prompt == "none" && slices.Contains(interactionNeeded, code) {
		httpx.NoStore(w.Header())
		http.Redirect(w, r, withError(tx.ReturnURL, code), http.StatusFound)
		return
	}
	// A step-up the user cancelled or could not complete leaves the session
	// as it was and tells the app.
	if tx.stepUp().asked() {
		httpx.NoStore(w.Header())
		http.Redirect(w, r, withError(tx.ReturnURL, "step_up_failed"), http.StatusFound)
		return
	}
	msg := "The identity provider did not sign you in."
	if code == "access_denied" {
		msg = "Sign-in was cancelled or denied."
	}
	httpx.Page(w, r, http.StatusForbidden, "Sign-in failed", msg, "/")
}

// withError returns the local path returnURL with error=code added to its
// query.
func withError(returnURL, code string) string {
	u, _ := url.Parse(returnURL)
	q := u.Query()
	q.Set("error", code)
	u.RawQuery = q.Encode()
	return u.String()
}

// logFailure logs why a silent login answered false: at info level when
// the provider needs the user (the expected answer for a signed-out
// browser), else as a warning or error. The logger adds the request id.
func (h *Handler) logFailure(r *http.Request, f *failure, tx *transaction) {
	ctx := r.Context()
	switch {
	case f.providerCode != "" && slices.Contains(interactionNeeded, f.providerCode):
		h.opts.Logger.InfoContext(ctx, "login: silent login needs the user", "provider_error", f.providerCode)
	case f.providerCode != "":
		h.opts.Logger.WarnContext(ctx, "login: silent login failed: provider answered with an error", "provider_error", f.providerCode)
	case f.internal:
		h.opts.Logger.ErrorContext(ctx, "login: silent login failed: "+f.what, "err", f.err)
	default:
		h.opts.Logger.WarnContext(ctx, "login: silent login failed: "+f.what, "err", f.err, "transaction", tx != nil)
	}
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
