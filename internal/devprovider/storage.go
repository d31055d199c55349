package devprovider

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequestTTL bounds how long a user may take to sign in, and so the
// lifetime of the code (RFC 6749 §4.1.2 recommends at most ten minutes).
const authRequestTTL = 10 * time.Minute

var errNotFound = errors.New("devprovider: not found")

// storage is the in-memory op.Storage behind a Provider. It is safe for
// concurrent use; one mutex guards all mutable state.
type storage struct {
	issuer     string
	httpClient *http.Client // back-channel logout delivery
	now        func() time.Time
	logger     *slog.Logger
	accessTTL  time.Duration
	idTTL      time.Duration
	refreshTTL time.Duration
	key        *signingKey
	clients    map[string]*client
	users      map[string]*User // by ID
	byName     map[string]*User // by Username

	mu             sync.Mutex
	autoLogin      string
	authRequests   map[string]*authRequest
	codes          map[string]string        // code → auth request id
	usedCodes      map[string]usedCode      // code → what it was exchanged for
	accessTokens   map[string]*accessToken  // by jti
	refreshTokens  map[string]*refreshToken // by token value
	sessions       map[string]*loginSession // by sid
	sessionCookies map[string]string        // cookie value → sid
	stats          Stats
}

// usedCode remembers an exchanged code until it would have expired, so a
// replay revokes what the code was exchanged for (RFC 6749 §4.1.2).
type usedCode struct {
	family  string
	expires time.Time
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

type revocationHintKey struct{}
type sessionCookieKey struct{}

// newID returns an opaque identifier with 128 bits from crypto/rand.
func newID() string { return rand.Text() }

// CreateAuthRequest stores a validated authorization request. PKCE with S256
// is mandatory for every request (RFC 9700 §2.1.1).
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method S256 is required")
	}
	if req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_mode query is supported")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	a := &authRequest{
		id:           newID(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		scopes:       slices.Clone([]string(req.Scopes)),
		state:        req.State,
		nonce:        req.Nonce,
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		challenge:    &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod},
		prompt:       slices.Clone([]string(req.Prompt)),
		maxAge:       req.MaxAge,
		hintSubject:  userID,
		expires:      s.now().Add(authRequestTTL),
	}
	s.authRequests[a.id] = a
	s.stats.AuthorizeRequests++
	return a.clone(), nil
}

// AuthRequestByID returns a copy of an unexpired authorization request.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.authRequestLocked(id)
	if err != nil {
		return nil, err
	}
	return a.clone(), nil
}

func (s *storage) authRequestLocked(id string) (*authRequest, error) {
	a, ok := s.authRequests[id]
	if !ok || !s.now().Before(a.expires) {
		return nil, fmt.Errorf("devprovider: auth request: %w", errNotFound)
	}
	return a, nil
}

// AuthRequestByCode redeems a code. A code works once: the first lookup
// consumes it, whether or not the exchange then succeeds, and a second use
// revokes every token issued for it (RFC 6749 §4.1.2).
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		if used, replay := s.usedCodes[code]; replay {
			s.logger.Warn("devprovider: authorization code replayed; revoking its tokens")
			s.revokeFamilyLocked(used.family)
		}
		return nil, fmt.Errorf("devprovider: code: %w", errNotFound)
	}
	delete(s.codes, code)
	a, err := s.authRequestLocked(id)
	if err != nil {
		return nil, err
	}
	s.usedCodes[code] = usedCode{family: a.id, expires: a.expires}
	return a.clone(), nil
}

// SaveAuthCode records the code issued for a signed-in request.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.authRequestLocked(id); err != nil {
		return err
	}
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest forgets a request once its code is exchanged.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	return nil
}

// CreateAccessToken records an access token for a grant without a refresh
// token: a code grant without offline_access, or client_credentials.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var family, sid, clientID string
	switch r := req.(type) {
	case *authRequest:
		s.stats.CodeGrants++
		family, sid, clientID = r.id, r.sid, r.clientID
	case *clientCredentialsRequest:
		s.stats.ClientCredentialsGrants++
		clientID = r.clientID
	default:
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	at := s.newAccessTokenLocked(family, req.GetSubject(), clientID, req.GetScopes(), sid)
	return at.id, at.expires, nil
}

// CreateAccessAndRefreshTokens issues an access token and a refresh token.
// On a refresh it rotates: the presented token is spent, and presenting it
// again revokes its family (RFC 9700 §4.14.2). The check and the rotation
// happen under one lock, so two concurrent refreshes with one token cannot
// both succeed.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var grant refreshRequest
	switch r := req.(type) {
	case *authRequest:
		s.stats.CodeGrants++
		grant = refreshRequest{
			family:   r.id,
			subject:  r.subject,
			clientID: r.clientID,
			scopes:   slices.Clone(r.scopes),
			amr:      slices.Clone(r.amr),
			authTime: r.authTime,
			sid:      r.sid,
		}
	case *refreshRequest:
		rt, err := s.liveRefreshTokenLocked(current)
		if err != nil {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithParent(err)
		}
		rt.rotated = true
		s.stats.RefreshGrants++
		// RFC 6749 §6: the new refresh token keeps the original scope; only
		// the access token is narrowed by a scope parameter.
		grant = rt.request
		grant.currentScopes = nil
	default:
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	at := s.newAccessTokenLocked(grant.family, grant.subject, grant.clientID, req.GetScopes(), grant.sid)
	grant.token = newID()
	s.refreshTokens[grant.token] = &refreshToken{request: grant, expires: s.now().Add(s.refreshTTL)}
	return at.id, grant.token, at.expires, nil
}

func (s *storage) newAccessTokenLocked(family, subject, clientID string, scopes []string, sid string) *accessToken {
	at := &accessToken{
		id:       newID(),
		family:   family,
		subject:  subject,
		clientID: clientID,
		scopes:   slices.Clone(scopes),
		sid:      sid,
		expires:  s.now().Add(s.accessTTL),
	}
	s.accessTokens[at.id] = at
	return at
}

// liveRefreshTokenLocked returns the stored refresh token if it may still be
// used. A rotated token is a replay: its family is revoked.
func (s *storage) liveRefreshTokenLocked(token string) (*refreshToken, error) {
	rt, ok := s.refreshTokens[token]
	if !ok {
		return nil, fmt.Errorf("devprovider: refresh token: %w", errNotFound)
	}
	if rt.rotated {
		s.stats.RefreshReuseRejected++
		s.logger.Warn("devprovider: rotated refresh token replayed; revoking its family",
			slog.String("client_id", rt.request.clientID), slog.String("sub", rt.request.subject))
		s.revokeFamilyLocked(rt.request.family)
		return nil, errors.New("devprovider: refresh token already used")
	}
	if !s.now().Before(rt.expires) {
		delete(s.refreshTokens, token)
		return nil, errors.New("devprovider: refresh token expired")
	}
	return rt, nil
}

// TokenRequestByRefreshToken returns the grant behind a usable refresh token.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, err := s.liveRefreshTokenLocked(token)
	if err != nil {
		return nil, err
	}
	r := rt.request
	r.scopes = slices.Clone(r.scopes)
	r.amr = slices.Clone(r.amr)
	return &r, nil
}

// revokeFamilyLocked removes every refresh and access token descending from
// one code grant.
func (s *storage) revokeFamilyLocked(family string) {
	if family == "" {
		return
	}
	for k, rt := range s.refreshTokens {
		if rt.request.family == family {
			delete(s.refreshTokens, k)
		}
	}
	for k, at := range s.accessTokens {
		if at.family == family {
			delete(s.accessTokens, k)
		}
	}
}

// TerminateSession ends every provider session of userID. op calls
// TerminateSessionFromRequest instead; this completes op.Storage.
func (s *storage) TerminateSession(ctx context.Context, userID, _ string) error {
	s.endSessions(ctx, func(ls *loginSession) bool { return ls.userID == userID })
	return nil
}

// TerminateSessionFromRequest handles RP-initiated logout: it ends the
// provider session named by the id_token_hint's sid and the one in the
// browser's cookie, with the tokens issued in them, notifies relying parties
// over back-channel logout, and returns where op redirects (the validated
// post_logout_redirect_uri with state).
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	var hintSID string
	if req.IDTokenHintClaims != nil {
		hintSID = req.IDTokenHintClaims.SessionID
	}
	cookie, _ := ctx.Value(sessionCookieKey{}).(string)
	s.mu.Lock()
	s.stats.EndSessions++
	s.mu.Unlock()
	s.endSessions(ctx, func(ls *loginSession) bool {
		return (hintSID != "" && ls.sid == hintSID) || (cookie != "" && ls.cookie == cookie)
	})
	return req.RedirectURI, nil
}

// endSessions ends the provider sessions that match, then delivers their
// back-channel logout tokens without holding the lock. It returns the sids
// ended, sorted.
func (s *storage) endSessions(ctx context.Context, match func(*loginSession) bool) []string {
	s.mu.Lock()
	var sids []string
	var notices []logoutNotice
	for sid, ls := range s.sessions {
		if match(ls) {
			sids = append(sids, sid)
		}
	}
	slices.Sort(sids)
	for _, sid := range sids {
		notices = append(notices, s.endSessionLocked(sid)...)
	}
	s.mu.Unlock()
	s.deliverLogouts(ctx, notices)
	return sids
}

// endSessionLocked removes one provider session and the tokens issued in it,
// and returns the back-channel notices owed to its relying parties.
func (s *storage) endSessionLocked(sid string) []logoutNotice {
	ls, ok := s.sessions[sid]
	if !ok {
		return nil
	}
	delete(s.sessionCookies, ls.cookie)
	delete(s.sessions, sid)
	for k, rt := range s.refreshTokens {
		if rt.request.sid == sid {
			delete(s.refreshTokens, k)
		}
	}
	for k, at := range s.accessTokens {
		if at.sid == sid {
			delete(s.accessTokens, k)
		}
	}
	var notices []logoutNotice
	for _, id := range slices.Sorted(maps.Keys(ls.clients)) {
		if c := s.clients[id]; c != nil && c.cfg.BackchannelLogoutURI != "" {
			notices = append(notices, logoutNotice{clientID: id, uri: c.cfg.BackchannelLogoutURI, sub: ls.userID, sid: sid})
		}
	}
	return notices
}

// RevokeToken implements RFC 7009 §2.1. Revoking a refresh token revokes its
// whole grant, access tokens included; revoking an access token revokes just
// that token. An unknown token is not an error (RFC 7009 §2.2).
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Revocations++
	s.stats.LastRevocationHint, _ = ctx.Value(revocationHintKey{}).(string)
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.request.clientID != clientID {
			return oidc.ErrUnauthorizedClient().WithDescription("token was issued to another client")
		}
		s.revokeFamilyLocked(rt.request.family)
		delete(s.refreshTokens, tokenOrID)
		return nil
	}
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrUnauthorizedClient().WithDescription("token was issued to another client")
		}
		delete(s.accessTokens, tokenOrID)
	}
	return nil
}

// GetRefreshTokenInfo identifies a refresh token for revocation; the token
// value is its own id.
func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.request.subject, token, nil
}

// SigningKey returns the RS256 key generated by New.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

// SignatureAlgorithms lists RS256 only.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet publishes the public signing key.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

// GetClientByClientID returns a configured client.
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("devprovider: client: %w", errNotFound)
	}
	return c, nil
}

// AuthorizeClientIDSecret checks a confidential client's secret in constant
// time.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	_, err := s.authenticate(id, secret)
	return err
}

func (s *storage) authenticate(id, secret string) (*client, error) {
	c, ok := s.clients[id]
	if !ok || c.method == oidc.AuthMethodNone {
		return nil, errors.New("devprovider: unknown client or wrong secret")
	}
	if subtle.ConstantTimeCompare([]byte(c.cfg.Secret), []byte(secret)) != 1 {
		return nil, errors.New("devprovider: unknown client or wrong secret")
	}
	return c, nil
}

// ClientCredentials authenticates a client for the client_credentials grant.
func (s *storage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	return s.authenticate(id, secret)
}

// ClientCredentialsTokenRequest makes the client the subject of its token.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &clientCredentialsRequest{clientID: id, scopes: slices.Clone(scopes)}, nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the
// work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims and its sid.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u, ok := s.users[req.GetSubject()]
	if !ok {
		return fmt.Errorf("devprovider: user: %w", errNotFound)
	}
	setUserinfo(info, u, scopes)
	var sid string
	switch r := req.(type) {
	case *authRequest:
		sid = r.sid
	case *refreshRequest:
		sid = r.sid
	}
	if sid != "" {
		info.AppendClaims("sid", sid)
	}
	return nil
}

// SetUserinfoFromToken answers the UserInfo endpoint for a live access token.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	at, err := s.liveAccessToken(tokenID)
	if err != nil {
		return err
	}
	if at.subject != subject {
		return errors.New("devprovider: access token subject mismatch")
	}
	u, ok := s.users[subject]
	if !ok {
		return fmt.Errorf("devprovider: user: %w", errNotFound)
	}
	setUserinfo(info, u, at.scopes)
	return nil
}

func (s *storage) liveAccessToken(id string) (accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[id]
	if !ok {
		return accessToken{}, fmt.Errorf("devprovider: access token: %w", errNotFound)
	}
	if !s.now().Before(at.expires) {
		delete(s.accessTokens, id)
		return accessToken{}, errors.New("devprovider: access token expired")
	}
	return *at, nil
}

func setUserinfo(info *oidc.UserInfo, u *User, scopes []string) {
	info.Subject = u.ID
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeProfile:
			info.Name = u.Name
			info.PreferredUsername = u.Username
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(u.EmailVerified)
		}
	}
}

// SetIntrospectionFromToken answers RFC 7662 introspection: active only for a
// live access token.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	at, err := s.liveAccessToken(tokenID)
	if err != nil || at.subject != subject {
		return errors.New("devprovider: token not active")
	}
	resp.Active = true
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(at.expires)
	resp.Audience = []string{at.clientID}
	resp.JWTID = at.id
	if u, ok := s.users[subject]; ok {
		info := new(oidc.UserInfo)
		setUserinfo(info, u, at.scopes)
		resp.SetUserInfo(info)
	} else {
		resp.Subject = subject
	}
	return nil
}

// GetPrivateClaimsFromScopes is superseded by GetPrivateClaimsFromRequest.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest adds scope (RFC 9068 §2.2.3) and, for a user's
// token, sid to JWT access tokens.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	claims := map[string]any{"scope": strings.Join(req.GetScopes(), " ")}
	switch r := req.(type) {
	case *authRequest:
		claims["sid"] = r.sid
	case *refreshRequest:
		claims["sid"] = r.sid
	}
	return claims, nil
}

// GetKeyByIDAndClientID is for private_key_jwt and the JWT profile grant,
// which the provider does not offer.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("devprovider: jwt client authentication not supported")
}

// ValidateJWTProfileScopes refuses the JWT profile grant.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("devprovider: jwt profile grant not supported")
}

// Health reports the in-memory store as always healthy.
func (s *storage) Health(context.Context) error { return nil }

// pruneLocked drops expired entries so a long-running demo does not grow
// without bound.
func (s *storage) pruneLocked() {
	now := s.now()
	for id, a := range s.authRequests {
		if !now.Before(a.expires) {
			delete(s.authRequests, id)
		}
	}
	for code, id := range s.codes {
		if _, ok := s.authRequests[id]; !ok {
			delete(s.codes, code)
		}
	}
	for code, u := range s.usedCodes {
		if !now.Before(u.expires) {
			delete(s.usedCodes, code)
		}
	}
	for id, at := range s.accessTokens {
		if !now.Before(at.expires) {
			delete(s.accessTokens, id)
		}
	}
	for tok, rt := range s.refreshTokens {
		if !now.Before(rt.expires) {
			delete(s.refreshTokens, tok)
		}
	}
	for sid, ls := range s.sessions {
		if !now.Before(ls.expires) {
			delete(s.sessionCookies, ls.cookie)
			delete(s.sessions, sid)
		}
	}
}
