package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// BackchannelLogoutEvent is the member of a logout token's `events` claim
// that marks it as a back-channel logout token (OpenID Connect Back-Channel
// Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken is a validated back-channel logout token. At least one of
// Subject and SID is set.
type LogoutToken struct {
	Issuer  string
	Subject string
	// SID is the provider session id, "" when the token names only a subject.
	SID      string
	JTI      string
	Expiry   time.Time
	IssuedAt time.Time
}

// Reasons a logout token is rejected, besides those of ID token validation
// (signature, iss, aud, exp), which VerifyLogoutToken reports as go-oidc
// does. Every one arrives wrapped in a *ValidationError.
var (
	ErrLogoutMalformed = errors.New("provider: logout token is not a compact JWS with one signature and an allowed alg")
	ErrLogoutTyp       = errors.New("provider: logout token typ header is neither logout+jwt nor JWT")
	ErrLogoutNoIat     = errors.New("provider: logout token has no iat")
	ErrLogoutFutureIat = errors.New("provider: logout token iat is in the future")
	ErrLogoutNoJTI     = errors.New("provider: logout token has no jti")
	ErrLogoutEvents    = errors.New("provider: logout token events lacks the back-channel logout event object")
	ErrLogoutNoSubject = errors.New("provider: logout token has neither sub nor sid")
	ErrLogoutNonce     = errors.New("provider: logout token carries a nonce")
	ErrLogoutAZP       = errors.New("provider: logout token azp is not this client")
)

// VerifyLogoutToken validates a back-channel logout token as OpenID Connect
// Back-Channel Logout 1.0 §2.6 requires: the signature with one of the
// provider's allowed asymmetric algorithms (never none or HMAC), iss, aud
// (containing the client id, with azp as for ID tokens), exp, iat, jti, the
// back-channel logout event, sub and/or sid, no nonce, and a typ header
// that is absent, "logout+jwt" or "JWT". It does not detect replays: the
// caller records JTI for the token's lifetime. A token signed with a key
// the cached JWKS lacks makes the provider's key set refetch the JWKS.
func (p *Provider) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	lt, err := p.verifyLogoutToken(ctx, raw)
	if err != nil {
		return nil, &ValidationError{Err: err}
	}
	return lt, nil
}

func (p *Provider) verifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	// §2.6 item 1 and §2.4: the typ header is not covered by go-oidc's
	// verifier. The algorithm list here is the allowed one, so a token with
	// alg none or HS256 is refused before any key is looked up.
	algs := make([]jose.SignatureAlgorithm, len(p.algs))
	for i, a := range p.algs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, ErrLogoutMalformed
	}
	if typ, present := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType]; present {
		s, ok := typ.(string)
		if !ok || !(strings.EqualFold(s, "logout+jwt") || strings.EqualFold(s, "JWT")) {
			return nil, ErrLogoutTyp
		}
	}

	// §2.6 items 2 to 4: signature with the provider's keys and allowed
	// algorithms, iss, aud containing the client id, and exp, as for an ID
	// token (OpenID Connect Core §3.1.3.7).
	t, err := p.verifier.Verify(p.ctx(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("provider: logout token: %w", err)
	}
	var claims struct {
		JTI    string         `json:"jti"`
		Events map[string]any `json:"events"`
		SID    string         `json:"sid"`
		AZP    string         `json:"azp"`
	}
	if err := t.Claims(&claims); err != nil {
		return nil, fmt.Errorf("provider: logout token claims: %w", err)
	}
	// present tells which claims the token carries at all, even as null.
	var present map[string]json.RawMessage
	if err := t.Claims(&present); err != nil {
		return nil, fmt.Errorf("provider: logout token claims: %w", err)
	}
	// OpenID Connect Core §3.1.3.7 items 4 and 5, which §2.6 item 3 applies.
	_, hasAZP := present["azp"]
	if (len(t.Audience) > 1 && !hasAZP) || (hasAZP && claims.AZP != p.opts.ClientID) {
		return nil, ErrLogoutAZP
	}
	// §2.6 item 5: iat is required; one far in the future is refused as
	// for ID tokens.
	if _, ok := present["iat"]; !ok || t.IssuedAt.IsZero() {
		return nil, ErrLogoutNoIat
	}
	if t.IssuedAt.After(p.opts.Now().Add(maxIatSkew)) {
		return nil, ErrLogoutFutureIat
	}
	// §2.4: jti is required, so that replays can be detected (§2.6 item 10).
	if claims.JTI == "" {
		return nil, ErrLogoutNoJTI
	}
	// §2.6 item 7: events holds the back-channel logout member, a JSON object.
	if ev, ok := claims.Events[BackchannelLogoutEvent].(map[string]any); !ok || ev == nil {
		return nil, ErrLogoutEvents
	}
	// §2.6 item 8: sub, sid or both.
	if t.Subject == "" && claims.SID == "" {
		return nil, ErrLogoutNoSubject
	}
	// §2.6 item 9: a nonce marks a token that is not a logout token (§4.1).
	if _, ok := present["nonce"]; ok {
		return nil, ErrLogoutNonce
	}
	return &LogoutToken{
		Issuer: t.Issuer, Subject: t.Subject, SID: claims.SID, JTI: claims.JTI,
		Expiry: t.Expiry, IssuedAt: t.IssuedAt,
	}, nil
}
