package frontchannel

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/store"
)

// Reason is the reason the ended sessions are recorded with.
const Reason = "frontchannel"

// Options configure a Handler.
type Options struct {
	// Provider is the OpenID provider whose logouts are accepted. Required.
	Provider *provider.Source
	// Sessions ends the sessions a request names. Required.
	Sessions Sessions
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
}

// Sessions is what the handler needs of the session manager.
type Sessions interface {
	// EndMatching ends the sessions f selects, with the reason, and
	// returns their keys.
	EndMatching(ctx context.Context, f store.Filter, reason string) ([]string, error)
}

// Handler is the front-channel logout endpoint. It is safe for concurrent
// use.
type Handler struct {
	opts Options
}

// New checks opts and returns a Handler.
func New(opts Options) (*Handler, error) {
	switch {
	case opts.Provider == nil:
		return nil, errors.New("frontchannel: a provider is required")
	case opts.Sessions == nil:
		return nil, errors.New("frontchannel: sessions are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts}, nil
}

// ServeHTTP handles one front-channel logout request (Front-Channel Logout
// 1.0 §2): GET with iss and sid in the query.
//
// A request without exactly one iss and one non-empty sid, or whose iss is
// not the configured provider's, ends nothing and gets 400 with no detail
// (a foreign iss is ignored, §2 and §4: the RP verifies the issuer; an
// iframe's answer is seen by nobody, so the status only helps operators).
// A valid request answers 200 whether or not a session matched: a session
// already ended counts as success, and the answer tells a prober nothing.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.page(w, http.StatusMethodNotAllowed, "", "Method not allowed")
		return
	}
	p, err := h.opts.Provider.Get(ctx)
	if err != nil {
		h.opts.Logger.WarnContext(ctx, "frontchannel: provider unavailable", "err", err)
		h.page(w, http.StatusServiceUnavailable, "", "Try again later")
		return
	}
	ancestors := frameAncestors(p.Issuer(), p.Metadata().EndSessionEndpoint)
	q := r.URL.Query()
	iss, sid := q["iss"], q["sid"]
	switch {
	case len(iss) != 1 || len(sid) != 1 || sid[0] == "" || len(sid[0]) > 1024:
		h.opts.Logger.InfoContext(ctx, "frontchannel: ignored a request without one iss and one sid")
		h.page(w, http.StatusBadRequest, ancestors, "Bad request")
		return
	case iss[0] != p.Issuer():
		h.opts.Logger.WarnContext(ctx, "frontchannel: ignored a request from a foreign issuer")
		h.page(w, http.StatusBadRequest, ancestors, "Bad request")
		return
	}
	keys, err := h.opts.Sessions.EndMatching(ctx, store.Filter{Issuer: iss[0], SID: sid[0]}, Reason)
	if err != nil {
		h.opts.Logger.ErrorContext(ctx, "frontchannel: could not end sessions", "err", err)
		h.page(w, http.StatusServiceUnavailable, ancestors, "Try again later")
		return
	}
	h.opts.Logger.InfoContext(ctx, "frontchannel: logout", "sessions", len(keys))
	h.page(w, http.StatusOK, ancestors, "Signed out")
}

// page writes the endpoint's tiny page. It must not be cached (§2: "The
// RP's response SHOULD include Cache-Control directives keeping the
// response from being cached") and may be framed by ancestors only.
func (h *Handler) page(w http.ResponseWriter, status int, ancestors, title string) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-cache, no-store")
	hd.Set("Pragma", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if ancestors == "" {
		ancestors = "'none'"
	}
	hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors "+ancestors)
	hd.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte("<!doctype html><meta charset=utf-8><title>" + title + "</title>\n"))
}

// frameAncestors returns the CSP source list of the provider's origins:
// the issuer's, and the end-session endpoint's when it differs (that page
// holds the iframes). An origin that is not a plain http(s) host is left
// out, so nothing from discovery can widen the policy.
func frameAncestors(urls ...string) string {
	var out []string
	for _, raw := range urls {
		o := origin(raw)
		if o != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return strings.Join(out, " ")
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return ""
	}
	for _, c := range u.Host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return ""
		}
	}
	return u.Scheme + "://" + u.Host
}
