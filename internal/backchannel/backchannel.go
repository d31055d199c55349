package backchannel

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/store"
)

const (
	// MaxBodyBytes bounds the request body; a larger one gets 413.
	MaxBodyBytes = 64 << 10
	// MaxTokenAge is how long after its iat a logout token is accepted,
	// whatever its exp, so that its jti need not be remembered for longer.
	MaxTokenAge = time.Hour
	// Reason is the reason the ended sessions are recorded with.
	Reason = "backchannel"

	// onceMargin keeps a jti recorded a little past the token's
	// acceptance window, for clock differences between instances.
	onceMargin = time.Minute
)

// Options configure a Handler.
type Options struct {
	// Provider is the OpenID provider whose logout tokens are accepted.
	// Required.
	Provider *provider.Source
	// Sessions ends the sessions a logout token names and records logout
	// token ids against replay. Required; with several Gatehouse instances
	// its store must be shared between them.
	Sessions Sessions
	// AllSessions ends every session of the token's subject even when the
	// token names a sid (only when it also names the subject).
	AllSessions bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
}

// Sessions is what the handler needs of the session manager.
type Sessions interface {
	// EndMatching ends the sessions f selects, with the reason, and
	// returns their keys.
	EndMatching(ctx context.Context, f store.Filter, reason string) ([]string, error)
	// Once reports whether key is recorded for the first time within ttl.
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Handler is the back-channel logout endpoint. It is safe for concurrent use.
type Handler struct {
	opts Options
}

// New checks opts and returns a Handler.
func New(opts Options) (*Handler, error) {
	switch {
	case opts.Provider == nil:
		return nil, errors.New("backchannel: a provider is required")
	case opts.Sessions == nil:
		return nil, errors.New("backchannel: sessions are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts}, nil
}

// ServeHTTP handles one back-channel logout request (Back-Channel Logout
// 1.0 §2.5 to §2.8).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := h.opts.Logger

	// §2.5: an HTTP POST with a form-encoded body holding logout_token.
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.JSONError(w, r, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		httpx.JSONError(w, r, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpx.JSONError(w, r, http.StatusRequestEntityTooLarge, "invalid_request", "request body too large")
			return
		}
		httpx.JSONError(w, r, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	// Only the body counts: a token in the URL would end up in access logs.
	vals := r.PostForm["logout_token"]
	if len(vals) != 1 || vals[0] == "" {
		httpx.JSONError(w, r, http.StatusBadRequest, "invalid_request", "exactly one logout_token parameter is required")
		return
	}
	raw := vals[0]

	// §2.8: whatever made the logout fail, the answer is 400.
	p, err := h.opts.Provider.Get(ctx)
	if err != nil {
		log.WarnContext(ctx, "backchannel logout: provider unavailable", "err", err)
		httpx.JSONError(w, r, http.StatusBadRequest, "temporarily_unavailable", "logout could not be processed, retry later")
		return
	}
	// An unknown kid makes the provider's key set refetch the JWKS, at a
	// bounded rate: this unauthenticated endpoint is no fetch amplifier.
	lt, err := p.VerifyLogoutToken(ctx, raw)
	if err != nil {
		log.WarnContext(ctx, "backchannel logout: invalid logout token", "err", err)
		httpx.JSONError(w, r, http.StatusBadRequest, "invalid_request", "invalid logout token")
		return
	}

	// The jti is remembered for as long as the token would be accepted:
	// until its exp, but no longer than MaxTokenAge after its iat.
	now := h.opts.Now()
	until := lt.IssuedAt.Add(MaxTokenAge)
	if lt.Expiry.Before(until) {
		until = lt.Expiry
	}
	if !until.After(now) {
		log.WarnContext(ctx, "backchannel logout: logout token issued too long ago", "iat", lt.IssuedAt)
		httpx.JSONError(w, r, http.StatusBadRequest, "invalid_request", "invalid logout token")
		return
	}
	// §2.6 item 10 and §2.4: a jti seen before is a replay. The issuer is
	// part of the key so that providers cannot collide.
	first, err := h.opts.Sessions.Once(ctx, "jti:"+lt.Issuer+"|"+lt.JTI, until.Sub(now)+onceMargin)
	if err != nil {
		log.ErrorContext(ctx, "backchannel logout: recording jti", "err", err)
		httpx.JSONError(w, r, http.StatusBadRequest, "server_error", "logout could not be processed, retry later")
		return
	}
	if !first {
		log.WarnContext(ctx, "backchannel logout: logout token replayed", "iss", lt.Issuer)
		httpx.JSONError(w, r, http.StatusBadRequest, "invalid_request", "logout token replayed")
		return
	}

	keys, err := h.end(ctx, lt)
	if err != nil {
		log.ErrorContext(ctx, "backchannel logout: ending sessions", "err", err, "ended", len(keys))
		httpx.JSONError(w, r, http.StatusBadRequest, "server_error", "logout could not be completed")
		return
	}
	log.InfoContext(ctx, "backchannel logout", "iss", lt.Issuer, "by_sid", lt.SID != "", "ended", len(keys))
	// §2.8: 200 with no body, not to be cached. A session already gone
	// counts as logged out (§2.7).
	httpx.NoStore(w.Header())
	w.WriteHeader(http.StatusOK)
}

// end deletes the sessions lt names (Back-Channel Logout 1.0 §2.7) and
// returns their keys.
func (h *Handler) end(ctx context.Context, lt *provider.LogoutToken) ([]string, error) {
	var keys []string
	if lt.SID != "" {
		k, err := h.opts.Sessions.EndMatching(ctx, store.Filter{Issuer: lt.Issuer, SID: lt.SID}, Reason)
		keys = append(keys, k...)
		if err != nil {
			return keys, err
		}
		if !h.opts.AllSessions || lt.Subject == "" {
			return keys, nil
		}
	}
	k, err := h.opts.Sessions.EndMatching(ctx, store.Filter{Issuer: lt.Issuer, Subject: lt.Subject}, Reason)
	for _, key := range k {
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return keys, err
}
