package tokens

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store"
)

// Errors of UserToken and ClientToken.
var (
	// ErrSessionEnded means the session can no longer get tokens (its
	// refresh token was rejected, or it ended meanwhile); it has been
	// deleted and the caller must answer 401.
	ErrSessionEnded = errors.New("tokens: session ended")
	// ErrUnavailable means the provider or the store failed transiently;
	// the session is kept and the caller should answer 503.
	ErrUnavailable = errors.New("tokens: token service unavailable")
	// ErrExchangeRefused means the provider refused to exchange the user's
	// token for the requested target; the caller should answer 403.
	ErrExchangeRefused = errors.New("tokens: token exchange refused")
)

// errSubjectMoved rejects a refreshed ID token of another issuer or user.
var errSubjectMoved = errors.New("tokens: refreshed id token changes iss or sub")

// Provider is the OpenID provider's token endpoint, as Manager uses it.
// *provider.Source implements it. Implementations are safe for concurrent
// use, and honour ctx for cancellation and for the DPoP key that
// dpop.WithKey puts in it.
type Provider interface {
	// Refresh uses a refresh token (RFC 6749 §6). It returns the new
	// tokens, with the old refresh token when the provider sent no new one,
	// and the validated ID token of the response, or nil when it had none.
	// A rejected refresh token is an error for which
	// provider.IsInvalidGrant is true, a rejected ID token a
	// *provider.ValidationError, and a provider that could not be
	// discovered an error wrapping provider.ErrDiscovery.
	Refresh(ctx context.Context, refreshToken string, extra url.Values) (*oauth2.Token, *provider.IDToken, error)
	// TokenRequest posts the grant in params (which holds grant_type) with
	// the client's authentication, and scopes when given. The provider's
	// error answers are *oauth2.RetrieveError.
	TokenRequest(ctx context.Context, params url.Values, scopes []string) (*oauth2.Token, error)
}

// Sessions is the session store, as Manager uses it. *session.Manager
// implements it. Implementations are safe for concurrent use.
type Sessions interface {
	// Load returns the session named by r's cookie, with the errors of
	// LoadKey; slide moves its idle deadline forward.
	Load(ctx context.Context, r *http.Request, slide bool) (*session.Session, error)
	// LoadKey returns the session stored under key; session.ErrNoSession
	// when there is none, session.ErrExpired when it passed a deadline
	// (and has been ended), any other error when the store failed. A ctx
	// from session.WithFreshRead reads past any local cache.
	LoadKey(ctx context.Context, key string, slide bool) (*session.Session, error)
	// Save writes back a changed session. It returns an error wrapping
	// store.ErrNotFound when the session has ended meanwhile, and never
	// brings an ended session back.
	Save(ctx context.Context, s *session.Session) error
	// End deletes the session and records why.
	End(ctx context.Context, s *session.Session, reason string) error
}

// Locker serialises refreshes of one session across processes. Lock blocks
// until it holds the lock named key (for at most ttl) or ctx ends, and
// returns the function that releases it.
type Locker interface {
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error)
}

// Options configure a Manager.
type Options struct {
	Provider Provider
	Sessions Sessions
	// Skew refreshes tokens this long before they expire. Default 60s.
	Skew time.Duration
	// Locker, when set, serialises refreshes across processes.
	Locker Locker
	// LockTTL bounds how long a refresh may hold the lock. Default 30s.
	LockTTL time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
	// OnRefresh, when set, observes every refresh attempt's outcome:
	// "ok", "invalid_grant", "rejected" or "error".
	OnRefresh func(outcome string)
}

// Manager hands out access tokens. It is safe for concurrent use.
type Manager struct {
	opts    Options
	refresh singleflight.Group
	// client caches client-credentials tokens by target, exchange caches
	// exchanged tokens by session, target and subject token.
	client, exchange *tokenCache
}

// New returns a Manager.
func New(opts Options) *Manager {
	if opts.Skew <= 0 {
		opts.Skew = 60 * time.Second
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		opts:     opts,
		client:   newTokenCache(opts.Now, opts.Skew),
		exchange: newTokenCache(opts.Now, opts.Skew),
	}
}

// fresh reports whether t can be used for at least the skew.
func (m *Manager) fresh(t *session.Tokens) bool {
	return t.AccessToken != "" && usable(t.Expiry, m.opts.Now(), m.opts.Skew)
}

// UserToken returns an access token of the session's user that is valid
// for at least the skew, refreshing it when needed. On success s holds the
// current tokens.
func (m *Manager) UserToken(ctx context.Context, s *session.Session) (string, error) {
	if m.fresh(&s.Tokens) {
		return s.Tokens.AccessToken, nil
	}
	if s.Tokens.RefreshToken == "" {
		if s.Tokens.AccessToken != "" && m.opts.Now().Before(s.Tokens.Expiry) {
			// Nearly expired but still valid, and nothing to refresh with.
			return s.Tokens.AccessToken, nil
		}
		m.end(ctx, s)
		return "", ErrSessionEnded
	}
	// One refresh per session at a time in this process; every waiter gets
	// its result. The refresh runs detached from any one caller's context.
	v, err, _ := m.refresh.Do(s.Key, func() (any, error) {
		return m.refreshSession(context.WithoutCancel(ctx), s.Key)
	})
	if err != nil {
		return "", err
	}
	t := v.(session.Tokens)
	s.Tokens = t
	return t.AccessToken, nil
}

func (m *Manager) refreshSession(ctx context.Context, key string) (session.Tokens, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.LockTTL)
	defer cancel()
	if m.opts.Locker != nil {
		unlock, err := m.opts.Locker.Lock(ctx, "refresh:"+key, m.opts.LockTTL)
		if err != nil {
			m.opts.Logger.ErrorContext(ctx, "tokens: refresh lock", "err", err)
			return session.Tokens{}, ErrUnavailable
		}
		defer unlock()
	}
	// Reload under the lock: another replica may have refreshed already,
	// and the refresh token in hand may be spent.
	s, err := m.opts.Sessions.LoadKey(session.WithFreshRead(ctx), key, false)
	switch {
	case errors.Is(err, session.ErrNoSession), errors.Is(err, session.ErrExpired):
		return session.Tokens{}, ErrSessionEnded
	case err != nil:
		m.opts.Logger.ErrorContext(ctx, "tokens: reload session", "err", err)
		return session.Tokens{}, ErrUnavailable
	}
	if m.fresh(&s.Tokens) {
		return s.Tokens, nil
	}
	ctx, err = withDPoP(ctx, s)
	if err != nil {
		return session.Tokens{}, ErrUnavailable
	}
	tok, id, err := m.opts.Provider.Refresh(ctx, s.Tokens.RefreshToken, nil)
	if err == nil && id != nil && (id.Issuer != s.Issuer || id.Subject != s.Subject) {
		// OpenID Connect Core §12.2: a refreshed ID token keeps the iss and
		// sub of the one the session was made from.
		err = &provider.ValidationError{Err: errSubjectMoved}
	}
	if err != nil {
		var ve *provider.ValidationError
		switch {
		case errors.Is(err, provider.ErrDiscovery):
			m.opts.Logger.ErrorContext(ctx, "tokens: provider unavailable", "err", err)
			return session.Tokens{}, ErrUnavailable
		case provider.IsInvalidGrant(err):
			m.observe("invalid_grant")
			m.opts.Logger.InfoContext(ctx, "tokens: refresh token rejected, ending session", "session", s.Handle)
			m.end(ctx, s)
			return session.Tokens{}, ErrSessionEnded
		case errors.As(err, &ve):
			m.observe("rejected")
			m.opts.Logger.WarnContext(ctx, "tokens: refreshed id token rejected, ending session", "session", s.Handle, "err", err)
			m.end(ctx, s)
			return session.Tokens{}, ErrSessionEnded
		default:
			m.observe("error")
			m.opts.Logger.ErrorContext(ctx, "tokens: refresh failed", "session", s.Handle, "err", err)
			return session.Tokens{}, ErrUnavailable
		}
	}
	m.observe("ok")
	s.Tokens.AccessToken = tok.AccessToken
	s.Tokens.TokenType = tok.TokenType
	s.Tokens.RefreshToken = tok.RefreshToken
	s.Tokens.Expiry = tok.Expiry
	if sc, ok := tok.Extra("scope").(string); ok && sc != "" {
		s.Tokens.Scope = sc
	}
	if id != nil {
		s.Tokens.IDToken = id.Raw
	}
	// Save before anyone else can use the session's refresh token: the
	// lock (or single flight) is still held.
	if err := m.opts.Sessions.Save(ctx, s); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return session.Tokens{}, ErrSessionEnded
		}
		m.opts.Logger.ErrorContext(ctx, "tokens: save refreshed session", "err", err)
		return session.Tokens{}, ErrUnavailable
	}
	return s.Tokens, nil
}

func (m *Manager) observe(outcome string) {
	if m.opts.OnRefresh != nil {
		m.opts.OnRefresh(outcome)
	}
}

func (m *Manager) end(ctx context.Context, s *session.Session) {
	if err := m.opts.Sessions.End(ctx, s, "refresh_failed"); err != nil {
		m.opts.Logger.ErrorContext(ctx, "tokens: end session", "err", err)
	}
}

// ClientToken returns a client-credentials access token (RFC 6749 §4.4) for
// scopes, an optional RFC 8707 resource and an optional audience, cached
// until shortly before it expires.
func (m *Manager) ClientToken(ctx context.Context, scopes []string, resource, audience string) (string, error) {
	key := strings.Join(scopes, " ") + "\x00" + resource + "\x00" + audience
	t, err := m.client.get(ctx, key, func(ctx context.Context) (*oauth2.Token, error) {
		params := url.Values{"grant_type": {"client_credentials"}}
		if resource != "" {
			params.Set("resource", resource)
		}
		if audience != "" {
			params.Set("audience", audience)
		}
		return m.opts.Provider.TokenRequest(ctx, params, scopes)
	})
	if err != nil {
		m.opts.Logger.ErrorContext(ctx, "tokens: client credentials", "err", err)
		return "", fmt.Errorf("%w: client credentials", ErrUnavailable)
	}
	return t.AccessToken, nil
}

// RFC 8693 token type identifiers.
const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// ExchangeToken returns an access token for an RFC 8707 resource and/or an
// audience, obtained by exchanging the user's current access token (RFC 8693
// §2.1), so that each API gets a token for itself alone (RFC 9700 §2.3).
// Exchanged tokens are cached per session, target and subject token until
// shortly before they expire. A provider's refusal is ErrExchangeRefused.
func (m *Manager) ExchangeToken(ctx context.Context, s *session.Session, resource, audience string) (string, error) {
	subject, err := m.UserToken(ctx, s)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(subject))
	key := s.Key + "\x00" + resource + "\x00" + audience + "\x00" + string(sum[:])
	t, err := m.exchange.get(ctx, key, func(ctx context.Context) (*oauth2.Token, error) {
		ctx, err := withDPoP(ctx, s)
		if err != nil {
			return nil, err
		}
		params := url.Values{
			"grant_type":           {grantTokenExchange},
			"subject_token":        {subject},
			"subject_token_type":   {tokenTypeAccessToken},
			"requested_token_type": {tokenTypeAccessToken},
		}
		if resource != "" {
			params.Set("resource", resource)
		}
		if audience != "" {
			params.Set("audience", audience)
		}
		return m.opts.Provider.TokenRequest(ctx, params, nil)
	})
	if err != nil {
		m.opts.Logger.WarnContext(ctx, "tokens: token exchange failed", "session", s.Handle, "err", err)
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return "", ErrExchangeRefused
		}
		return "", ErrUnavailable
	}
	return t.AccessToken, nil
}

// withDPoP puts the session's DPoP key, if it has one, in ctx, so that the
// provider client's dpop.Transport signs token requests with it.
func withDPoP(ctx context.Context, s *session.Session) (context.Context, error) {
	if len(s.DPoPKey) == 0 {
		return ctx, nil
	}
	k, err := dpop.ParseKey(s.DPoPKey)
	if err != nil {
		return ctx, fmt.Errorf("tokens: session dpop key: %w", err)
	}
	return dpop.WithKey(ctx, k), nil
}

// DPoPKey returns the session's DPoP key, or nil when its tokens are
// bearer tokens.
func DPoPKey(s *session.Session) (*dpop.Key, error) {
	if len(s.DPoPKey) == 0 {
		return nil, nil
	}
	return dpop.ParseKey(s.DPoPKey)
}
