package tokens

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

// Errors of Credential, beside ErrSessionEnded, ErrUnavailable and
// ErrExchangeRefused.
var (
	// ErrLoginRequired means the route needs a signed-in user and the
	// request has no live session: 401, never a redirect.
	ErrLoginRequired = errors.New("tokens: login required")
	// ErrSessionsUnavailable means the session store could not be read:
	// 503, nothing is forwarded.
	ErrSessionsUnavailable = errors.New("tokens: sessions unavailable")
	// ErrClientUnavailable means no client-credentials token could be had
	// from the provider: 503.
	ErrClientUnavailable = errors.New("tokens: client token unavailable")
)

// Need is what a route asks of the token layer.
type Need struct {
	Mode config.TokenMode
	// Audience and Resource (RFC 8707) name the API a client or exchanged
	// token is for.
	Audience, Resource string
	// Exchange asks for an RFC 8693 token exchanged from the user's.
	Exchange bool
}

// Credential returns what a request on a route with need carries upstream,
// and the session it came from (nil when the mode needed none or the
// caller is anonymous). These are every token mode's rules:
//
//   - none: nothing, whoever calls.
//   - client: Gatehouse's own client-credentials token.
//   - user: the session's access token, refreshed when due, or exchanged
//     for the route's target; no session is ErrLoginRequired.
//   - optional_user: the user's token when signed in, else nothing.
//   - user_or_client: the user's token when signed in, else a client token.
//
// A DPoP-bound user token comes with the function that makes its proofs
// (RFC 9449 §7.1). Every error means: forward nothing.
func (m *Manager) Credential(ctx context.Context, r *http.Request, need Need) (proxy.Credential, *session.Session, error) {
	switch need.Mode {
	case config.TokenNone:
		return proxy.Credential{}, nil, nil
	case config.TokenClient:
		c, err := m.clientCredential(ctx, need)
		return c, nil, err
	}
	s, err := m.opts.Sessions.Load(ctx, r, true)
	switch {
	case err == nil:
	case errors.Is(err, session.ErrNoSession), errors.Is(err, session.ErrExpired):
		switch need.Mode {
		case config.TokenOptionalUser:
			return proxy.Credential{}, nil, nil
		case config.TokenUserOrClient:
			c, err := m.clientCredential(ctx, need)
			return c, nil, err
		}
		return proxy.Credential{}, nil, ErrLoginRequired
	default:
		m.opts.Logger.LogAttrs(ctx, slog.LevelError, "tokens: load session",
			slog.Any("err", err))
		return proxy.Credential{}, nil, ErrSessionsUnavailable
	}
	var token string
	if need.Exchange {
		token, err = m.ExchangeToken(ctx, s, need.Resource, need.Audience)
	} else {
		token, err = m.UserToken(ctx, s)
	}
	if err != nil {
		return proxy.Credential{}, s, err
	}
	key, err := DPoPKey(s)
	if err != nil {
		m.opts.Logger.LogAttrs(ctx, slog.LevelError, "tokens: session dpop key",
			slog.Any("err", err))
		return proxy.Credential{}, s, ErrUnavailable
	}
	if key == nil {
		return proxy.Credential{Token: token}, s, nil
	}
	now := m.opts.Now
	return proxy.Credential{Token: token, Proof: func(method, url string) (string, error) {
		return key.Proof(method, url, token, "", now())
	}}, s, nil
}

func (m *Manager) clientCredential(ctx context.Context, need Need) (proxy.Credential, error) {
	token, err := m.ClientToken(ctx, nil, need.Resource, need.Audience)
	if err != nil {
		return proxy.Credential{}, ErrClientUnavailable
	}
	return proxy.Credential{Token: token}, nil
}
