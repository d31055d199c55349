package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// Path is where the handler serves the session API.
const Path = "/admin/sessions"

// Target is one app's sessions, as the operator API sees them.
type Target struct {
	// App names the app ("" for the top-level one).
	App string
	// Service does the work.
	Service *Service
	// Issuer returns the app's provider's verified issuer, which scopes
	// every call; an error answers 503.
	Issuer func(ctx context.Context) (string, error)
}

// HandlerOptions configure the operator handler.
type HandlerOptions struct {
	// Targets returns the apps being served now. Required.
	Targets func() []Target
	// Token is the bearer credential every request must present
	// ("Authorization: Bearer <token>"). When empty, only callers whose
	// connection comes from a loopback address are served: such a handler
	// MUST NOT be reachable through a reverse proxy on the same host,
	// since the proxy's connections come from loopback too. ListenCheck
	// refuses a non-loopback listen address without a token.
	Token string
	// Logger records what operators ended; nil discards.
	Logger *slog.Logger
}

type handler struct {
	opts      HandlerOptions
	tokenHash [sha256.Size]byte
}

// NewHandler returns the operator session API:
//
//	GET    /admin/sessions?sub=S           the subject's live sessions, newest first
//	DELETE /admin/sessions?sub=S           end all of the subject's sessions
//	DELETE /admin/sessions?sid=X           end the sessions of a provider session id
//	DELETE /admin/sessions?sub=S&handle=H  end one session of the subject
//
// Each acts on every app, or on one with app=NAME ("" names the top-level
// app; an unknown name answers 404). A DELETE answers {"ended": n}; ending
// one unknown handle answers 404.
// Every response is JSON and not to be cached. A request without the token
// (or, with no token configured, from a non-loopback address) answers 401.
func NewHandler(opts HandlerOptions) (http.Handler, error) {
	if opts.Targets == nil {
		return nil, errors.New("admin: targets are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &handler{opts: opts, tokenHash: sha256.Sum256([]byte(opts.Token))}, nil
}

// Ended is the answer to a DELETE.
type Ended struct {
	Ended int `json:"ended"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		unauthorized(w, r)
		return
	}
	if r.URL.Path != Path {
		httpx.JSONError(w, r, http.StatusNotFound, "not_found", "")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodDelete {
		w.Header().Set("Allow", "GET, DELETE")
		httpx.JSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "")
		return
	}
	q := r.URL.Query()
	sub, sid, handle := q.Get("sub"), q.Get("sid"), q.Get("handle")
	switch {
	case r.Method == http.MethodGet && (sub == "" || sid != "" || handle != ""):
		httpx.JSONError(w, r, http.StatusBadRequest, "invalid_request", "Listing takes exactly one parameter: sub.")
		return
	case r.Method == http.MethodDelete && (sub == "") == (sid == ""):
		httpx.JSONError(w, r, http.StatusBadRequest, "invalid_request", "Ending sessions takes either sub (with an optional handle) or sid.")
		return
	case handle != "" && sub == "":
		httpx.JSONError(w, r, http.StatusBadRequest, "invalid_request", "A handle needs the sub it belongs to.")
		return
	}
	ctx := r.Context()
	targets := h.opts.Targets()
	if q.Has("app") {
		app := q.Get("app")
		targets = slices.DeleteFunc(targets, func(t Target) bool { return t.App != app })
		if len(targets) == 0 {
			httpx.JSONError(w, r, http.StatusNotFound, "not_found", "No app has that name.")
			return
		}
	}
	issuers := make([]string, len(targets))
	for i, t := range targets {
		iss, err := t.Issuer(ctx)
		if err != nil {
			h.opts.Logger.ErrorContext(ctx, "admin: provider issuer unavailable", "app", t.App, "err", err)
			httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The provider has not been discovered yet.")
			return
		}
		issuers[i] = iss
	}
	if r.Method == http.MethodGet {
		all := []SessionInfo{}
		for i, t := range targets {
			list, err := t.Service.List(ctx, issuers[i], sub)
			if err != nil {
				h.fail(w, r, "list sessions", err)
				return
			}
			for _, s := range list {
				s.App = t.App
				all = append(all, s)
			}
		}
		httpx.JSON(w, http.StatusOK, all)
		return
	}
	n := 0
	for i, t := range targets {
		var (
			ended int
			err   error
		)
		switch {
		case handle != "":
			var ok bool
			if ok, err = t.Service.EndHandle(ctx, issuers[i], sub, handle); ok {
				ended = 1
			}
		case sub != "":
			ended, err = t.Service.EndSubject(ctx, issuers[i], sub)
		default:
			ended, err = t.Service.EndSID(ctx, issuers[i], sid)
		}
		if err != nil {
			h.fail(w, r, "end sessions", err)
			return
		}
		n += ended
	}
	if handle != "" && n == 0 {
		httpx.JSONError(w, r, http.StatusNotFound, "not_found", "The subject has no live session with that handle.")
		return
	}
	h.opts.Logger.InfoContext(ctx, "admin: sessions ended by an operator", "sub", sub, "sid", sid, "handle", handle, "ended", n, "remote", r.RemoteAddr)
	httpx.JSON(w, http.StatusOK, Ended{Ended: n})
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.opts.Logger.ErrorContext(r.Context(), "admin: "+what, "err", err)
	httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The session store cannot be reached right now.")
}

// authorized reports whether r may use the API: it carries the configured
// bearer token, or no token is configured and it comes from loopback.
func (h *handler) authorized(r *http.Request) bool {
	return authorized(r, h.opts.Token, h.tokenHash)
}

// authorized reports whether r presents the bearer token whose hash is
// tokenHash, or, with no token configured, comes from loopback.
func authorized(r *http.Request, token string, tokenHash [sha256.Size]byte) bool {
	if token == "" {
		return httpx.FromLoopback(r)
	}
	scheme, presented, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	// RFC 7235 §2.1: the scheme name is case-insensitive.
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Comparing fixed-size hashes in constant time reveals neither the
	// token nor its length through timing.
	got := sha256.Sum256([]byte(strings.TrimSpace(presented)))
	return subtle.ConstantTimeCompare(got[:], tokenHash[:]) == 1
}

// ListenCheck returns an error when an admin listener on addr would be
// reachable from the network without a token: addr must name this machine
// (config.IsLoopback) unless token is set. BoundCheck then checks the
// address actually bound.
func ListenCheck(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin: listen address %q must be host:port: %w", addr, err)
	}
	if token != "" || config.IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("admin: listen address %q is not a loopback address; set an admin token, or listen on 127.0.0.1 or [::1], so that the session API is not open to the network", addr)
}

// BoundCheck returns an error when ln, an admin listener without a token,
// is bound to anything but a loopback address (a name such as
// "x.localhost" that resolved elsewhere, say).
func BoundCheck(ln net.Listener, token string) error {
	if token != "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("admin: the listener is bound to %s, not a loopback address; set an admin token", ln.Addr())
	}
	return nil
}

// unauthorized answers a request without the admin token.
func unauthorized(w http.ResponseWriter, r *http.Request) {
	// RFC 6750 §3: a protected resource names its scheme in the challenge.
	challenge := `Bearer realm="gatehouse-admin"`
	if r.Header.Get("Authorization") != "" {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	httpx.JSONError(w, r, http.StatusUnauthorized, "unauthorized", "A valid admin token is required.")
}

// ReloadPath is where NewReloadHandler serves.
const ReloadPath = "/admin/reload"

// NewReloadHandler returns POST /admin/reload, authenticated like the
// session API: it calls reload and answers 200 {"status":"reloaded"}, or
// 409 {"error":"reload_refused"} with the reason when the new
// configuration was refused (the running one keeps serving).
func NewReloadHandler(token string, reload func(context.Context) error, logger *slog.Logger) http.Handler {
	hash := sha256.Sum256([]byte(token))
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r, token, hash) {
			unauthorized(w, r)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			httpx.JSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "")
			return
		}
		if err := reload(r.Context()); err != nil {
			logger.WarnContext(r.Context(), "admin: configuration reload refused", "err", err)
			// The reason names configuration keys and problems, never
			// secret values: validation messages do not quote secrets.
			httpx.JSONError(w, r, http.StatusConflict, "reload_refused", err.Error())
			return
		}
		logger.InfoContext(r.Context(), "admin: configuration reloaded", "remote", r.RemoteAddr)
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
	})
}
