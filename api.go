package gatehouse

import (
	"context"
	"errors"
	"net/http"

	"github.com/gatehouse-bff/gatehouse/internal/csrf"
	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/policy"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/tokens"
)

// apiRoute is one configured API route: its name in metrics and logs, and
// what it asks of the token layer.
type apiRoute struct {
	name   string
	need   tokens.Need
	policy *policy.Policy
}

// serveAPI handles one call to an API route, top to bottom: check for
// cross-site forgery, get the credential the route's token mode calls for
// (loading the session once and refreshing its token when due), apply the
// route's policy (its require conditions and the identity it gives the
// upstream), forward with it. A route never redirects to the provider: no
// session is 401, forgery is 403.
func (a *app) serveAPI(w http.ResponseWriter, r *http.Request, api *apiRoute, m proxy.Match) {
	if err := a.csrf.Check(r); err != nil {
		csrf.Reject(w, r)
		return
	}
	cred, s, err := a.tokens.Credential(r.Context(), r, api.need)
	if err != nil {
		a.refuse(w, r, err)
		return
	}
	defer s.SlideWritten(r.Context())
	if !api.policy.Apply(w, r, s, &cred) {
		return
	}
	if s == nil {
		a.proxy.Forward(w, r, m, cred)
		return
	}
	// A response that stays open is closed when the session ends, by
	// canceling the call's context; the same context bounds the wait for
	// the upstream's answer.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	call := a.streams.Track(w, r, cancel, a.name, s, a.cfg.Session.IdleTimeout)
	defer call.Done()
	a.proxy.ForwardWithin(ctx, cancel, call, r, m, cred)
}

// refuse answers an API call whose credential could not be had. The
// causes were logged where they happened.
func (a *app) refuse(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, tokens.ErrLoginRequired):
		httpx.JSONError(w, r, http.StatusUnauthorized, "login_required", "")
	case errors.Is(err, tokens.ErrSessionEnded):
		a.sessions.ClearCookie(w)
		httpx.JSONError(w, r, http.StatusUnauthorized, "login_required", "")
	case errors.Is(err, tokens.ErrExchangeRefused):
		httpx.JSONError(w, r, http.StatusForbidden, "access_denied", "The identity provider refused a token for this API.")
	case errors.Is(err, tokens.ErrSessionsUnavailable):
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "Sessions cannot be read right now.")
	case errors.Is(err, tokens.ErrClientUnavailable):
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "A client access token cannot be obtained right now.")
	default:
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "A fresh access token cannot be obtained right now.")
	}
}
