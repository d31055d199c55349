package gatehouse

import (
	"errors"
	"net/http"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/tokens"
)

// serveAPI handles one call to an API route, top to bottom: check for
// cross-site forgery, find the token the route wants (loading the session
// once and refreshing its token when needed), forward. A route never
// redirects to the provider: no session is 401, forgery is 403.
func (g *Gateway) serveAPI(w http.ResponseWriter, r *http.Request, route *proxy.Route) {
	if err := g.checkCSRF(r); err != nil {
		httpx.JSONError(w, r, http.StatusForbidden, "csrf_failed", "The anti-forgery header is missing or the request is cross-site.")
		return
	}
	token, proof, ok := g.routeToken(w, r, route)
	if !ok {
		return
	}
	ctx := proxy.WithToken(r.Context(), token)
	if proof != nil {
		ctx = proxy.WithDPoP(ctx, proof)
	}
	g.proxy.ServeRoute(w, r.WithContext(ctx), route)
}

// routeToken returns the access token route wants for r ("" for none) and,
// for a DPoP-bound user token, the function that makes its proofs; or it
// answers the request itself and returns false.
func (g *Gateway) routeToken(w http.ResponseWriter, r *http.Request, route *proxy.Route) (string, proxy.ProofFunc, bool) {
	ctx := r.Context()
	switch route.Token {
	case proxy.TokenNone:
		return "", nil, true
	case proxy.TokenClient:
		token, ok := g.clientToken(w, r, route)
		return token, nil, ok
	}
	s, err := g.sessions.Load(ctx, r, true)
	switch {
	case err == nil:
	case errors.Is(err, session.ErrNoSession), errors.Is(err, session.ErrExpired):
		switch route.Token {
		case proxy.TokenOptionalUser:
			return "", nil, true
		case proxy.TokenUserOrClient:
			token, ok := g.clientToken(w, r, route)
			return token, nil, ok
		}
		httpx.JSONError(w, r, http.StatusUnauthorized, "login_required", "")
		return "", nil, false
	default:
		g.log.ErrorContext(ctx, "load session", "request_id", httpx.RequestID(ctx), "err", err)
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "Sessions cannot be read right now.")
		return "", nil, false
	}
	var token string
	if route.TokenExchange {
		token, err = g.tokens.ExchangeToken(ctx, s, route.Resource, route.Audience)
	} else {
		token, err = g.tokens.UserToken(ctx, s)
	}
	switch {
	case err == nil:
		key, err := tokens.DPoPKey(s)
		if err != nil {
			g.log.ErrorContext(ctx, "session dpop key", "request_id", httpx.RequestID(ctx), "err", err)
			httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "A fresh access token cannot be obtained right now.")
			return "", nil, false
		}
		if key == nil {
			return token, nil, true
		}
		now := g.sessions.Now
		return token, func(method, url string) (string, error) {
			return key.Proof(method, url, token, "", now())
		}, true
	case errors.Is(err, tokens.ErrSessionEnded):
		g.sessions.ClearCookie(w)
		httpx.JSONError(w, r, http.StatusUnauthorized, "login_required", "")
	case errors.Is(err, tokens.ErrExchangeRefused):
		httpx.JSONError(w, r, http.StatusForbidden, "access_denied", "The identity provider refused a token for this API.")
	default:
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "A fresh access token cannot be obtained right now.")
	}
	return "", nil, false
}

func (g *Gateway) clientToken(w http.ResponseWriter, r *http.Request, route *proxy.Route) (string, bool) {
	token, err := g.tokens.ClientToken(r.Context(), nil, route.Resource, route.Audience)
	if err != nil {
		httpx.JSONError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "A client access token cannot be obtained right now.")
		return "", false
	}
	return token, true
}
