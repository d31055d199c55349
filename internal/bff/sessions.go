package bff

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/csrf"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store"
)

// SessionInfo is one entry of the session list: what a user may see about
// one of their own sessions. It never carries keys, tokens or claims.
type SessionInfo struct {
	// Handle is the session's random public name; it cannot be turned
	// into a cookie.
	Handle    string    `json:"handle"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	// ExpiresAt is when the session ends if it is not used again.
	ExpiresAt time.Time `json:"expires_at"`
	UserAgent string    `json:"user_agent"`
	// Current is true for the session the request was made with.
	Current bool `json:"current"`
}

// maxHandle bounds the length of a handle taken from a request path.
const maxHandle = 64

// Sessions serves the signed-in user's session list; the gateway routes
// both <prefix>/sessions and <prefix>/sessions/... here:
//
//	GET    <prefix>/sessions           the caller's live sessions, newest first
//	DELETE <prefix>/sessions           end all of them but the current one
//	DELETE <prefix>/sessions/{handle}  end one of them (the current one too)
//
// Every call needs the anti-forgery check (403) and a session (401). A
// handle that is unknown or names someone else's session answers 404, so
// handles of other users cannot be probed. Ending a session deletes it on
// the server (OWASP ASVS V3.3.1). A store that cannot list sessions
// (session.Lister) answers 501.
func (h *Handler) Sessions(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.opts.Prefix+"/sessions")
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		httpx.JSONError(w, r, http.StatusNotFound, "not_found", "")
		return
	}
	handle, one := strings.CutPrefix(rest, "/")
	if one && (handle == "" || len(handle) > maxHandle || strings.Contains(handle, "/")) {
		httpx.JSONError(w, r, http.StatusNotFound, "not_found", "")
		return
	}
	switch {
	case one && r.Method != http.MethodDelete:
		w.Header().Set("Allow", http.MethodDelete)
		httpx.JSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "")
		return
	case !one && r.Method != http.MethodGet && r.Method != http.MethodDelete:
		w.Header().Set("Allow", "GET, DELETE")
		httpx.JSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "")
		return
	}
	if err := h.opts.CSRF(r); err != nil {
		csrf.Reject(w, r)
		return
	}
	current, ok := h.load(w, r, true)
	if !ok {
		return
	}
	defer current.SlideWritten(r.Context())
	all, ok := h.ownSessions(w, r, current)
	if !ok {
		return
	}
	switch {
	case one:
		h.endOne(w, r, current, all, handle)
	case r.Method == http.MethodDelete:
		h.endOthers(w, r, current, all)
	default:
		idle := h.opts.Sessions.IdleTimeout()
		out := make([]SessionInfo, 0, len(all))
		for _, s := range all {
			out = append(out, SessionInfo{
				Handle:    s.Handle,
				CreatedAt: s.CreatedAt,
				LastSeen:  s.LastSeen,
				ExpiresAt: s.ExpiresAt(idle),
				UserAgent: s.UserAgent,
				Current:   s.Key == current.Key,
			})
		}
		httpx.JSON(w, http.StatusOK, out)
	}
}

// ownSessions returns the live sessions of current's issuer and subject,
// newest first, or answers 503 itself when the store fails. Records that
// cannot be opened (sealed with a retired key) are left out: they cannot be
// loaded either.
func (h *Handler) ownSessions(w http.ResponseWriter, r *http.Request, current *session.Session) ([]*session.Session, bool) {
	ctx := r.Context()
	all, err := h.opts.Sessions.List(ctx, store.Filter{Issuer: current.Issuer, Subject: current.Subject})
	if err != nil {
		h.opts.Logger.ErrorContext(ctx, "bff: list sessions", "err", err)
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "Sessions cannot be read right now.")
		return nil, false
	}
	return all, true
}

// endOne ends the caller's session named handle: 204, or 404 when the
// caller has none by that name.
func (h *Handler) endOne(w http.ResponseWriter, r *http.Request, current *session.Session, all []*session.Session, handle string) {
	ctx := r.Context()
	i := slices.IndexFunc(all, func(s *session.Session) bool { return s.Handle == handle })
	if i < 0 {
		httpx.JSONError(w, r, http.StatusNotFound, "not_found", "")
		return
	}
	s := all[i]
	if err := h.opts.Sessions.End(ctx, s, "revoked"); err != nil {
		h.opts.Logger.ErrorContext(ctx, "bff: end session", "err", err)
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The session could not be ended right now.")
		return
	}
	if s.Key == current.Key {
		h.opts.Sessions.ClearCookie(w)
	}
	h.opts.Logger.InfoContext(ctx, "bff: session ended by its user", "session", s.Handle, "by", current.Handle)
	noContent(w)
}

// endOthers ends every session of the caller but the current one: 204.
func (h *Handler) endOthers(w http.ResponseWriter, r *http.Request, current *session.Session, all []*session.Session) {
	ctx := r.Context()
	var errs []error
	ended := 0
	for _, s := range all {
		if s.Key == current.Key {
			continue
		}
		if err := h.opts.Sessions.End(ctx, s, "revoked"); err != nil {
			errs = append(errs, err)
			continue
		}
		ended++
	}
	if err := errors.Join(errs...); err != nil {
		h.opts.Logger.ErrorContext(ctx, "bff: end other sessions", "ended", ended, "err", err)
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "Not every session could be ended right now.")
		return
	}
	h.opts.Logger.InfoContext(ctx, "bff: other sessions ended by their user", "by", current.Handle, "ended", ended)
	noContent(w)
}

func noContent(w http.ResponseWriter) {
	httpx.NoStore(w.Header())
	w.WriteHeader(http.StatusNoContent)
}
