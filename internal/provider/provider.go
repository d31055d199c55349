package provider

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gatehouse-bff/gatehouse/config"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Options configure a Provider.
type Options struct {
	// Issuer is the configured issuer; discovery must report it exactly.
	Issuer       string
	ClientID     string
	ClientSecret string
	// AuthMethod is "client_secret_basic" (default), "client_secret_post"
	// or "private_key_jwt" (with ClientKey).
	AuthMethod string
	// ClientKey signs private_key_jwt client assertions; ClientKeyID is
	// the kid the provider knows it by (optional).
	ClientKey   crypto.Signer
	ClientKeyID string
	Scopes      []string
	// RedirectURL is the exact callback URL registered at the provider.
	RedirectURL string
	// SigningAlgs are the accepted ID token algorithms; empty means the
	// asymmetric ones the provider advertises, or RS256.
	SigningAlgs []string
	// HTTPClient makes every provider call; nil means a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock used for token checks; nil means time.Now.
	Now func() time.Time
}

// Metadata holds the discovery fields Gatehouse uses beyond what go-oidc
// exposes (OpenID Connect Discovery 1.0 §3, RFC 8414).
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	IssParameterSupported             bool     `json:"authorization_response_iss_parameter_supported"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
	// Front-Channel Logout 1.0 §3.
	FrontchannelLogoutSupported        bool     `json:"frontchannel_logout_supported"`
	FrontchannelLogoutSessionSupported bool     `json:"frontchannel_logout_session_supported"`
	DPoPSigningAlgValuesSupported      []string `json:"dpop_signing_alg_values_supported"`
}

// Provider is a discovered OpenID provider together with Gatehouse's client
// registration there. It is safe for concurrent use.
type Provider struct {
	opts     Options
	oidc     *oidc.Provider
	meta     Metadata
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	algs     []string
}

// asymmetric are the algorithms an ID token may be signed with: the
// configuration's one list.
var asymmetric = config.AsymmetricAlgs()

// Discover fetches the provider's discovery document and key set location.
// It fails when the document's issuer differs from opts.Issuer
// (OpenID Connect Discovery 1.0 §4.3, RFC 9700 §2.6).
func Discover(ctx context.Context, opts Options) (*Provider, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx = oidc.ClientContext(ctx, opts.HTTPClient)
	op, err := oidc.NewProvider(ctx, opts.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, &IssuerMismatchError{Configured: opts.Issuer, Discovered: mismatch.Discovered}
		}
		return nil, fmt.Errorf("provider: discovery: %w", err)
	}
	p := &Provider{opts: opts, oidc: op}
	if err := op.Claims(&p.meta); err != nil {
		return nil, fmt.Errorf("provider: discovery document: %w", err)
	}
	if p.meta.TokenEndpoint == "" || p.meta.AuthorizationEndpoint == "" || p.meta.JWKSURI == "" {
		return nil, errors.New("provider: discovery document lacks authorization_endpoint, token_endpoint or jwks_uri")
	}

	p.algs = opts.SigningAlgs
	if len(p.algs) == 0 {
		for _, a := range p.meta.IDTokenSigningAlgValuesSupported {
			if slices.Contains(asymmetric, a) {
				p.algs = append(p.algs, a)
			}
		}
		if len(p.algs) == 0 {
			p.algs = []string{"RS256"}
		}
	}

	style := oauth2.AuthStyleInHeader
	secret := opts.ClientSecret
	switch {
	case opts.AuthMethod == AuthPrivateKeyJWT:
		if opts.ClientKey == nil {
			return nil, errors.New("provider: private_key_jwt needs a client key")
		}
		// Only client_id goes in the form; the assertion is added per request.
		style, secret = oauth2.AuthStyleInParams, ""
	case opts.AuthMethod == "client_secret_post":
		style = oauth2.AuthStyleInParams
	}
	ep := op.Endpoint()
	ep.AuthStyle = style
	p.oauth = oauth2.Config{
		ClientID:     opts.ClientID,
		ClientSecret: secret,
		Endpoint:     ep,
		RedirectURL:  opts.RedirectURL,
		Scopes:       opts.Scopes,
	}
	// The key set refetches the JWKS when a token names an unknown kid
	// (OpenID Connect Core §10.1.1), rate-limited.
	p.verifier = oidc.NewVerifier(p.meta.Issuer, newKeySet(p.meta.JWKSURI, opts.HTTPClient, p.algs), &oidc.Config{
		ClientID:             opts.ClientID,
		SupportedSigningAlgs: p.algs,
		Now:                  opts.Now,
	})
	return p, nil
}

// IssuerMismatchError reports a discovery document for another issuer.
type IssuerMismatchError struct {
	Configured, Discovered string
}

func (e *IssuerMismatchError) Error() string {
	return fmt.Sprintf("provider: discovery reports issuer %q, configured issuer is %q", e.Discovered, e.Configured)
}

// Metadata returns the discovery document's fields.
func (p *Provider) Metadata() Metadata { return p.meta }

// Issuer returns the verified issuer.
func (p *Provider) Issuer() string { return p.meta.Issuer }

// ClientID returns the client id.
func (p *Provider) ClientID() string { return p.opts.ClientID }

// SigningAlgs returns the accepted ID token algorithms.
func (p *Provider) SigningAlgs() []string { return slices.Clone(p.algs) }

// HTTPClient returns the client used for provider calls.
func (p *Provider) HTTPClient() *http.Client { return p.opts.HTTPClient }

// SupportsPrompt reports whether the provider lists v in prompt_values_supported.
func (p *Provider) SupportsPrompt(v string) bool {
	return slices.Contains(p.meta.PromptValuesSupported, v)
}

// SupportsDPoP reports whether the provider accepts DPoP proofs signed with
// ES256 (RFC 9449 §5.1).
func (p *Provider) SupportsDPoP() bool {
	return slices.Contains(p.meta.DPoPSigningAlgValuesSupported, "ES256")
}

// SupportsS256 reports whether the provider advertises PKCE S256.
func (p *Provider) SupportsS256() bool {
	return slices.Contains(p.meta.CodeChallengeMethodsSupported, "S256")
}

func (p *Provider) ctx(ctx context.Context) context.Context {
	return context.WithValue(oidc.ClientContext(ctx, p.opts.HTTPClient), oauth2.HTTPClient, p.opts.HTTPClient)
}

// AuthRequest is one authorization request's per-transaction secrets.
type AuthRequest struct {
	State    string
	Nonce    string
	Verifier string // PKCE code verifier (RFC 7636 §4.1)
	Prompt   string
	// Extra holds further static parameters (never protocol ones).
	Extra map[string]string
}

// AuthCodeURL returns the authorization endpoint URL for req: code flow with
// PKCE S256, state and nonce (RFC 9700 §2.1.1, OpenID Connect Core §3.1.2.1).
func (p *Provider) AuthCodeURL(req AuthRequest) string {
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(req.Verifier),
		oidc.Nonce(req.Nonce),
	}
	if req.Prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", req.Prompt))
	}
	for k, v := range req.Extra {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return p.oauth.AuthCodeURL(req.State, opts...)
}

// CheckIssParam checks the RFC 9207 iss authorization response parameter:
// when present it must equal the issuer, and when the provider advertises
// support it must be present (RFC 9207 §2.4, RFC 9700 §4.4.2).
func (p *Provider) CheckIssParam(q url.Values) error {
	iss, present := q["iss"]
	switch {
	case present && (len(iss) != 1 || iss[0] != p.meta.Issuer):
		return ErrIssMismatch
	case !present && p.meta.IssParameterSupported:
		return ErrIssMissing
	}
	return nil
}

// Errors of the authorization response and token checks.
var (
	ErrIssMismatch = errors.New("provider: authorization response iss does not match the issuer (possible mix-up attack)")
	ErrIssMissing  = errors.New("provider: authorization response lacks the iss parameter the provider advertises")
	ErrNoIDToken   = errors.New("provider: token response has no id_token")
	ErrNonce       = errors.New("provider: id token nonce does not match")
	ErrNoSubject   = errors.New("provider: id token has no sub")
	ErrNoIssuedAt  = errors.New("provider: id token has no iat")
	ErrFutureIat   = errors.New("provider: id token iat is in the future")
	ErrAZP         = errors.New("provider: id token azp is not this client")
	ErrAccessHash  = errors.New("provider: id token at_hash does not match the access token")
	ErrUserInfoSub = errors.New("provider: userinfo sub differs from the id token's")
)

// maxIatSkew is how far in the future an iat may be, for clock drift.
const maxIatSkew = 5 * time.Minute

// Exchange trades an authorization code for tokens (RFC 6749 §4.1.3) with
// the PKCE verifier, then validates the ID token against nonce.
func (p *Provider) Exchange(ctx context.Context, code, verifier, nonce string) (*oauth2.Token, *IDToken, error) {
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	auth, err := p.clientAuth(p.meta.TokenEndpoint)
	if err != nil {
		return nil, nil, err
	}
	for k := range auth {
		opts = append(opts, oauth2.SetAuthURLParam(k, auth.Get(k)))
	}
	tok, err := p.oauth.Exchange(p.ctx(ctx), code, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("provider: code exchange: %w", err)
	}
	p.setExpiry(tok)
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, nil, ErrNoIDToken
	}
	id, err := p.VerifyIDToken(ctx, raw, nonce, tok.AccessToken)
	if err != nil {
		return nil, nil, err
	}
	return tok, id, nil
}

// IDToken is a validated ID token.
type IDToken struct {
	Raw      string
	Issuer   string
	Subject  string
	Expiry   time.Time
	IssuedAt time.Time
	// SID is the provider session id (OpenID Connect Front/Back-Channel Logout).
	SID string
	// Claims are all the token's claims.
	Claims map[string]any
}

// VerifyIDToken validates an ID token as OpenID Connect Core §3.1.3.7
// requires: signature with an allowed algorithm (never none or HMAC), iss,
// aud, azp, exp, iat, sub, and nonce (when nonce is not empty). With an
// access token, a present at_hash must match it.
func (p *Provider) VerifyIDToken(ctx context.Context, raw, nonce, accessToken string) (*IDToken, error) {
	id, err := p.verifyIDToken(ctx, raw, nonce, accessToken)
	if err != nil {
		return nil, &ValidationError{Err: err}
	}
	return id, nil
}

func (p *Provider) verifyIDToken(ctx context.Context, raw, nonce, accessToken string) (*IDToken, error) {
	t, err := p.verifier.Verify(p.ctx(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("provider: id token: %w", err)
	}
	var claims map[string]any
	if err := t.Claims(&claims); err != nil {
		return nil, fmt.Errorf("provider: id token claims: %w", err)
	}
	if nonce != "" && t.Nonce != nonce {
		return nil, ErrNonce
	}
	if t.Subject == "" {
		return nil, ErrNoSubject
	}
	if _, ok := claims["iat"]; !ok || t.IssuedAt.IsZero() {
		return nil, ErrNoIssuedAt
	}
	if t.IssuedAt.After(p.opts.Now().Add(maxIatSkew)) {
		return nil, ErrFutureIat
	}
	// §3.1.3.7 items 4 and 5: with several audiences azp must be present,
	// and a present azp must be this client.
	azp, hasAZP := claims["azp"]
	if (len(t.Audience) > 1 && !hasAZP) || (hasAZP && azp != p.opts.ClientID) {
		return nil, ErrAZP
	}
	if t.AccessTokenHash != "" && accessToken != "" {
		if err := t.VerifyAccessToken(accessToken); err != nil {
			return nil, ErrAccessHash
		}
	}
	sid, _ := claims["sid"].(string)
	return &IDToken{
		Raw: raw, Issuer: t.Issuer, Subject: t.Subject, Expiry: t.Expiry,
		IssuedAt: t.IssuedAt, SID: sid, Claims: claims,
	}, nil
}

// Refresh uses a refresh token (RFC 6749 §6), with extra parameters such
// as an RFC 8707 resource. A returned ID token is validated as
// VerifyIDToken does; the returned IDToken is nil when the response has
// none. That it keeps the session's iss and sub (OpenID Connect Core
// §12.2) is for the caller, who knows the session, to check. When the
// response carries no new refresh token, the old one stays in the returned
// token. A refresh token the provider rejects yields an error for which
// IsInvalidGrant is true.
func (p *Provider) Refresh(ctx context.Context, refreshToken string, extra url.Values) (*oauth2.Token, *IDToken, error) {
	params := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	for k, v := range extra {
		params[k] = v
	}
	tok, err := p.TokenRequest(ctx, params, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("provider: refresh: %w", err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return tok, nil, nil
	}
	id, err := p.VerifyIDToken(ctx, raw, "", tok.AccessToken)
	if err != nil {
		return nil, nil, err
	}
	return tok, id, nil
}

// TokenRequest posts a grant to the token endpoint with the client's
// authentication and returns the parsed token. params must hold grant_type;
// scopes, when given, are sent as the scope parameter. Errors from the
// provider are *oauth2.RetrieveError.
func (p *Provider) TokenRequest(ctx context.Context, params url.Values, scopes []string) (*oauth2.Token, error) {
	// clientcredentials.Config is x/oauth2's generic token-endpoint client:
	// its EndpointParams may replace grant_type, which lets every grant
	// (refresh with resource, RFC 8693 exchange) share its request and
	// response handling.
	auth, err := p.clientAuth(p.meta.TokenEndpoint)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		merged := url.Values{}
		for k, v := range params {
			merged[k] = v
		}
		for k, v := range auth {
			merged[k] = v
		}
		params = merged
	}
	cc := clientcredentials.Config{
		ClientID:       p.opts.ClientID,
		ClientSecret:   p.oauth.ClientSecret,
		TokenURL:       p.meta.TokenEndpoint,
		Scopes:         scopes,
		EndpointParams: params,
		AuthStyle:      p.oauth.Endpoint.AuthStyle,
	}
	tok, err := cc.Token(p.ctx(ctx))
	if err != nil {
		return nil, err
	}
	p.setExpiry(tok)
	return tok, nil
}

// setExpiry dates the token's expiry from expires_in on the provider's
// clock (x/oauth2 dates it on the wall clock), so that every expiry
// decision uses one clock.
func (p *Provider) setExpiry(tok *oauth2.Token) {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case string:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return
		}
		secs = n
	default:
		return
	}
	if secs > 0 {
		tok.Expiry = p.opts.Now().Add(time.Duration(secs) * time.Second)
	}
}

// ValidationError wraps every reason an ID token was rejected.
type ValidationError struct{ Err error }

func (e *ValidationError) Error() string { return e.Err.Error() }
func (e *ValidationError) Unwrap() error { return e.Err }

// IsInvalidGrant reports whether err is the provider's answer that a grant
// (a refresh token, say) is no longer valid, as opposed to a transient
// failure.
func IsInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}
