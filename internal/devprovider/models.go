package devprovider

import (
	"crypto/rsa"
	"log/slog"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is one authorization request, from /authorize until its code
// is exchanged or it expires.
type authRequest struct {
	id           string
	clientID     string
	redirectURI  string
	scopes       []string
	state        string
	nonce        string
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	prompt       []string
	maxAge       *uint
	hintSubject  string // sub of a valid id_token_hint, or ""
	expires      time.Time

	// Set when a user has signed in for this request.
	done     bool
	subject  string
	authTime time.Time
	sid      string
	amr      []string
}

var (
	_ op.AuthRequest    = (*authRequest)(nil)
	_ op.LogAuthRequest = (*authRequest)(nil)
)

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return a.amr }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// LogValue lists the fields that are safe to log: no state, nonce or
// challenge.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("client_id", a.clientID),
		slog.String("redirect_uri", a.redirectURI),
		slog.Any("scopes", a.scopes),
	)
}

// clone returns a copy whose slices the caller may keep after the storage
// lock is released.
func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	c.prompt = slices.Clone(a.prompt)
	c.amr = slices.Clone(a.amr)
	if a.challenge != nil {
		ch := *a.challenge
		c.challenge = &ch
	}
	return &c
}

// refreshRequest is the grant behind a refresh token, handed to op for one
// refresh_token grant.
type refreshRequest struct {
	token         string
	family        string
	subject       string
	clientID      string
	scopes        []string
	currentScopes []string
	amr           []string
	authTime      time.Time
	sid           string
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string       { return r.amr }
func (r *refreshRequest) GetAudience() []string  { return []string{r.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time { return r.authTime }
func (r *refreshRequest) GetClientID() string    { return r.clientID }
func (r *refreshRequest) GetSubject() string     { return r.subject }

// GetScopes returns the scopes of this refresh, narrowed by the request's
// scope parameter when it had one (RFC 6749 §6).
func (r *refreshRequest) GetScopes() []string {
	if r.currentScopes != nil {
		return r.currentScopes
	}
	return r.scopes
}

func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.currentScopes = scopes }

// clientCredentialsRequest is a client_credentials grant: the subject is the
// client itself.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

var _ op.TokenRequest = (*clientCredentialsRequest)(nil)

func (c *clientCredentialsRequest) GetSubject() string    { return c.clientID }
func (c *clientCredentialsRequest) GetAudience() []string { return []string{c.clientID} }
func (c *clientCredentialsRequest) GetScopes() []string   { return c.scopes }

// accessToken is the server-side record of an issued JWT access token,
// keyed by its jti.
type accessToken struct {
	id       string
	family   string // "" for client_credentials
	subject  string
	clientID string
	scopes   []string
	sid      string
	expires  time.Time
}

// refreshToken is an issued refresh token. A rotated token stays stored
// until it expires so that its replay is recognised (RFC 9700 §4.14.2).
type refreshToken struct {
	request refreshRequest
	expires time.Time
	rotated bool
}

// loginSession is a user's sign-in at the provider, named by the sid claim.
type loginSession struct {
	sid      string
	cookie   string
	userID   string
	authTime time.Time
	expires  time.Time
	clients  map[string]bool // relying parties signed in through this session
}

// client adapts a configured Client to op.Client.
type client struct {
	cfg        Client
	method     oidc.AuthMethod
	grants     []oidc.GrantType
	idTokenTTL time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string          { return c.cfg.ID }
func (c *client) RedirectURIs() []string { return c.cfg.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string {
	return c.cfg.PostLogoutRedirectURIs
}
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return c.method }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType { return c.grants }

// LoginURL is the provider's own login page; the issuer has no path, so a
// root-relative URL reaches it.
func (c *client) LoginURL(id string) string {
	return loginPath + "?" + url.Values{"authRequestID": {id}}.Encode()
}
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration      { return c.idTokenTTL }
func (c *client) DevMode() bool                       { return false }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed accepts any scope: resource-specific scopes such as "api"
// pass through to the access token.
func (c *client) IsScopeAllowed(string) bool { return true }

// IDTokenUserinfoClaimsAssertion puts profile and email claims in the ID
// token even when an access token is issued too.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

// signingKey is the provider's RS256 key.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

var (
	_ op.SigningKey = (*signingKey)(nil)
	_ op.Key        = (*publicKey)(nil)
)

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is the published half of a signingKey.
type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }
