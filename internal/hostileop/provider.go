package hostileop

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults used when a test does not override them.
const (
	// DefaultClientID is the client registered when New gets no WithClient.
	DefaultClientID = "gatehouse"
	// DefaultSubject is the user signed in when New gets no WithUser.
	DefaultSubject = "user-1"
	// DefaultAccessTokenTTL is the lifetime of access tokens (expires_in).
	DefaultAccessTokenTTL = time.Hour
	// IDTokenTTL is the lifetime of ID tokens.
	IDTokenTTL = time.Hour
	// LogoutTokenTTL is the lifetime of logout tokens.
	LogoutTokenTTL = 2 * time.Minute
	// CodeTTL is the lifetime of authorization codes (RFC 6749 §4.1.2
	// recommends at most ten minutes).
	CodeTTL = 10 * time.Minute
)

// Client is an OAuth client registered with the provider.
type Client struct {
	ID     string
	Secret string
	// Key, when set, is the public key the client signs private_key_jwt
	// assertions with (RFC 7523 §2.2, OpenID Connect Core §9).
	Key *jose.JSONWebKey
	// RedirectURIs are compared exactly (RFC 9700 §2.1).
	RedirectURIs []string
	// PostLogoutRedirectURIs are the URIs end_session may redirect to.
	PostLogoutRedirectURIs []string
	// FrontchannelLogoutURI, when set, is loaded in an iframe of the
	// end_session page with iss and sid (Front-Channel Logout 1.0 §2).
	FrontchannelLogoutURI string
}

// Option configures a Provider in New.
type Option func(*config)

type config struct {
	clients    []*Client
	postLogout map[string][]string
	sub        string
	claims     map[string]any
	withSID    bool
}

// WithClient registers a client with its secret and exact redirect URIs.
// The first client registered is the default client (see Provider.Client).
// Use a secret of at least 32 bytes if the test needs the HS256 defects.
func WithClient(id, secret string, redirectURIs ...string) Option {
	return func(c *config) {
		c.clients = append(c.clients, &Client{ID: id, Secret: secret, RedirectURIs: slices.Clone(redirectURIs)})
	}
}

// WithClientKey lets the client id authenticate with private_key_jwt
// assertions signed by the private half of key.
func WithClientKey(id string, key jose.JSONWebKey) Option {
	return func(c *config) {
		for _, cl := range c.clients {
			if cl.ID == id {
				k := key
				cl.Key = &k
			}
		}
	}
}

// WithPostLogoutRedirectURIs registers post_logout_redirect_uri values for
// the client with the given id (registered with WithClient, in any order).
func WithPostLogoutRedirectURIs(clientID string, uris ...string) Option {
	return func(c *config) {
		c.postLogout[clientID] = append(c.postLogout[clientID], uris...)
	}
}

// WithFrontchannelLogoutURI registers the client's frontchannel_logout_uri
// (with frontchannel_logout_session_required): end_session then renders an
// iframe of uri with iss and the ended session's sid before it continues.
func WithFrontchannelLogoutURI(clientID, uri string) Option {
	return func(c *config) {
		for _, cl := range c.clients {
			if cl.ID == clientID {
				cl.FrontchannelLogoutURI = uri
			}
		}
	}
}

// WithUser sets the user who is signed in at every authorization, and the
// claims that go into ID tokens and userinfo responses next to `sub`.
func WithUser(sub string, claims map[string]any) Option {
	return func(c *config) {
		c.sub = sub
		c.claims = maps.Clone(claims)
	}
}

// WithSID controls whether each authorization gets a session id that goes
// into ID tokens as `sid` (default true). It also sets
// backchannel_logout_session_supported in discovery.
func WithSID(on bool) Option {
	return func(c *config) { c.withSID = on }
}

// Provider is a running hostile OpenID provider. Its methods are safe for
// concurrent use.
type Provider struct {
	// URL is the issuer identifier and the base URL of every endpoint.
	URL string

	tb     testing.TB
	srv    *httptest.Server
	ctx    context.Context // cancelled when the test ends, before the server closes
	client *http.Client

	mu      sync.Mutex
	clients map[string]*Client
	first   string
	sub     string
	claims  map[string]any
	withSID bool

	keys keyring

	defect          Defect
	issParam        IssParam
	discoveryIssuer string
	authorizeError  string
	refreshMode     RefreshMode
	refreshDelay    time.Duration
	refreshHook     func(context.Context)
	refreshIDToken  bool
	refreshTokens   bool
	accessTTL       time.Duration
	now             func() time.Time
	userinfoSub     string
	challenge       []string
	prompts         []string
	acr             string
	authAge         time.Duration
	revocation      bool
	endSession      bool

	dpop              bool
	dpopNonceRequired bool
	dpopNonce         string
	dpopJTIs          map[string]bool // jti of accepted DPoP proofs (RFC 9449 §11.1)

	codes    map[string]*authCode
	access   map[string]*accessToken
	refresh  map[string]*refreshToken
	idTokens map[string]string // raw ID token → client id
	// idTokenSIDs maps a raw ID token to its sid, for front-channel logout.
	idTokenSIDs map[string]string
	issued      []string
	// assertionIDs are the jti of accepted client assertions (single use).
	assertionIDs map[string]bool
	// exchanges are the RFC 8693 token exchanges answered.
	exchanges []ExchangeRequest
	nextID    int

	stats         Stats
	lastAuthorize url.Values
	lastTokenForm url.Values
	lastTokenHdr  http.Header
	lastSID       string
}

// New starts a provider on a loopback httptest.Server; it is shut down when
// the test ends. Without options it registers DefaultClientID with a random
// 43-character secret and no redirect URIs, and signs in DefaultSubject.
func New(tb testing.TB, opts ...Option) *Provider {
	tb.Helper()
	cfg := &config{postLogout: map[string][]string{}, sub: DefaultSubject, withSID: true,
		claims: map[string]any{"name": "Test User", "email": "user-1@example.test", "email_verified": true}}
	for _, o := range opts {
		o(cfg)
	}
	if len(cfg.clients) == 0 {
		cfg.clients = []*Client{{ID: DefaultClientID, Secret: randomString("")}}
	}
	p := &Provider{
		tb:             tb,
		clients:        map[string]*Client{},
		first:          cfg.clients[0].ID,
		sub:            cfg.sub,
		claims:         cfg.claims,
		withSID:        cfg.withSID,
		issParam:       IssParamCorrect,
		refreshIDToken: true,
		refreshTokens:  true,
		accessTTL:      DefaultAccessTokenTTL,
		now:            time.Now,
		challenge:      []string{"S256"},
		prompts:        []string{"none", "login", "consent", "select_account"},
		revocation:     true,
		endSession:     true,
		codes:          map[string]*authCode{},
		access:         map[string]*accessToken{},
		refresh:        map[string]*refreshToken{},
		idTokens:       map[string]string{},
		idTokenSIDs:    map[string]string{},
	}
	for _, c := range cfg.clients {
		c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, cfg.postLogout[c.ID]...)
		p.clients[c.ID] = c
	}
	if err := p.keys.init(); err != nil {
		tb.Fatalf("hostileop: %v", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.handleDiscovery)
	mux.HandleFunc("GET /jwks", p.handleJWKS)
	mux.HandleFunc("/authorize", p.handleAuthorize)
	mux.HandleFunc("POST /token", p.handleToken)
	mux.HandleFunc("/userinfo", p.handleUserinfo)
	mux.HandleFunc("POST /revoke", p.handleRevoke)
	mux.HandleFunc("/end_session", p.handleEndSession)
	p.srv = httptest.NewServer(mux)
	p.URL = p.srv.URL
	p.client = p.srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	p.ctx = ctx
	// Cleanups run last-in first-out: cancel first so that slow refreshes
	// and blocked hooks return, then close the server.
	tb.Cleanup(p.srv.Close)
	tb.Cleanup(cancel)
	return p
}

// Client returns a copy of the default client (the first one registered).
func (p *Provider) Client() Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := *p.clients[p.first]
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	return c
}

// HTTPClient returns an HTTP client that reaches the provider and does not
// follow redirects, so a test can read the authorization response.
func (p *Provider) HTTPClient() *http.Client {
	c := *p.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// RegisterRedirectURI adds an exact redirect URI to a registered client, for
// tests that learn their callback URL only after New.
func (p *Provider) RegisterRedirectURI(clientID, uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[clientID]
	if !ok {
		p.tb.Fatalf("hostileop: RegisterRedirectURI: unknown client %q", clientID)
	}
	c.RedirectURIs = append(c.RedirectURIs, uri)
}

// RegisterPostLogoutRedirectURI adds a post_logout_redirect_uri to a
// registered client.
func (p *Provider) RegisterPostLogoutRedirectURI(clientID, uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[clientID]
	if !ok {
		p.tb.Fatalf("hostileop: RegisterPostLogoutRedirectURI: unknown client %q", clientID)
	}
	c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, uri)
}

// SetUser changes the user signed in at the following authorizations.
func (p *Provider) SetUser(sub string, claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sub = sub
	p.claims = maps.Clone(claims)
}

// SetDefect sets how every ID token issued from now on is broken, until it
// is set back to Valid. It applies to the code grant, refresh grants and
// MintIDToken.
func (p *Provider) SetDefect(d Defect) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.defect = d
}

// SetIssParam sets how authorization responses carry the RFC 9207 `iss`
// parameter and whether discovery advertises it.
func (p *Provider) SetIssParam(m IssParam) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.issParam = m
}

// SetDiscoveryIssuer makes the discovery document claim issuer s while
// tokens keep the real one; "" restores the real issuer.
func (p *Provider) SetDiscoveryIssuer(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.discoveryIssuer = s
}

// SetAuthorizeError makes /authorize redirect back with error=code and the
// request's state instead of a code (OIDC Core §3.1.2.6); "" turns it off.
func (p *Provider) SetAuthorizeError(code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.authorizeError = code
}

// RotateKeys makes a new signing key current. The new key is the one
// UnknownKid tokens were signed with, so those tokens verify once the
// client refetches the JWKS. The previous key stays published until
// RetireOldKeys.
func (p *Provider) RotateKeys() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.keys.rotate(); err != nil {
		p.tb.Fatalf("hostileop: %v", err)
	}
}

// RetireOldKeys removes every key but the current one (and the extra keys)
// from the JWKS.
func (p *Provider) RetireOldKeys() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys.retired = nil
}

// CurrentKeyID returns the kid of the key that signs valid tokens.
func (p *Provider) CurrentKeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys.current.kid
}

// SetNoKid makes tokens signed with the provider's keys carry no `kid`
// header. The JWKS keeps the kids.
func (p *Provider) SetNoKid(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys.noKid = on
}

// SetExtraKeys publishes n additional RSA keys that never sign anything, so
// a client must pick the right key among several.
func (p *Provider) SetExtraKeys(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.keys.setExtra(n); err != nil {
		p.tb.Fatalf("hostileop: %v", err)
	}
}

// SetRefreshMode sets how refresh_token grants are answered.
func (p *Provider) SetRefreshMode(m RefreshMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshMode = m
}

// SetRefreshDelay sets how long RefreshSlow waits before answering. The wait
// ends early when the client goes away or the test ends; the grant is then
// still processed (and the refresh token rotated), as a real server would.
func (p *Provider) SetRefreshDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshDelay = d
}

// SetRefreshHook installs f to run at the start of every refresh grant,
// after it is counted and before it is processed, outside the provider's
// lock. f may block to hold a refresh in flight; it must return when ctx is
// done (the client went away or the test ended). nil removes the hook.
func (p *Provider) SetRefreshHook(f func(ctx context.Context)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshHook = f
}

// SetRefreshIDToken controls whether refresh responses carry a new ID token
// (default true; OIDC Core §12.2).
func (p *Provider) SetRefreshIDToken(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshIDToken = on
}

// SetRefreshTokens controls whether the code grant issues a refresh token
// at all (default true).
func (p *Provider) SetRefreshTokens(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshTokens = on
}

// SetAccessTokenTTL sets the lifetime (and expires_in) of access tokens
// issued from now on.
func (p *Provider) SetAccessTokenTTL(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accessTTL = d
}

// SetClock sets the provider's clock for iat, exp, code and access token
// expiry; nil restores time.Now.
func (p *Provider) SetClock(now func() time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	p.now = now
}

// SetUserinfoSub makes userinfo answer with this `sub` instead of the
// signed-in user's; "" restores the real one.
func (p *Provider) SetUserinfoSub(sub string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.userinfoSub = sub
}

// SetCodeChallengeMethods sets code_challenge_methods_supported (default
// ["S256"]). When the list is empty the provider does not support PKCE and
// ignores code_challenge and code_verifier; otherwise PKCE is required and
// the method must be listed (RFC 7636 §4.4.1).
func (p *Provider) SetCodeChallengeMethods(methods []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.challenge = slices.Clone(methods)
}

// SetPromptValues sets prompt_values_supported (default none, login,
// consent, select_account). An authorization request with a prompt value
// not listed gets error=invalid_request; an empty list accepts any.
func (p *Provider) SetPromptValues(values []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prompts = slices.Clone(values)
}

// SetACR makes every authorization from now on report acr as its `acr`
// claim, whatever acr_values asked for (to script an acr that was not
// asked for). With "" (the default) an authorization reports the first
// requested acr_values entry, or no acr when none was requested.
func (p *Provider) SetACR(acr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acr = acr
}

// SetAuthAge makes every authorization from now on report an `auth_time`
// d in the past, as a provider that ignores max_age and reuses an old
// sign-in would; 0 (the default) reports the time of the authorization.
func (p *Provider) SetAuthAge(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.authAge = d
}

// SetRevocation controls whether the revocation endpoint is advertised and
// served (default true).
func (p *Provider) SetRevocation(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revocation = on
}

// SetEndSession controls whether the end-session endpoint is advertised and
// served (default true).
func (p *Provider) SetEndSession(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endSession = on
}

// Stats counts what the provider has seen.
type Stats struct {
	Discovery   int // discovery document fetches
	JWKSFetches int
	Authorize   int // authorization requests, including rejected ones
	// CodeGrants counts authorization_code token requests, including
	// rejected ones; CodeReplays counts those that presented a used code.
	CodeGrants  int
	CodeReplays int
	// RefreshGrants counts refresh_token token requests; RefreshFailures
	// those answered with an error; RefreshReuses those that presented a
	// rotated-away refresh token and revoked its family.
	RefreshGrants           int
	RefreshFailures         int
	RefreshReuses           int
	ClientCredentialsGrants int
	TokenExchanges          int // RFC 8693 token exchange requests
	ClientAssertions        int // accepted private_key_jwt client assertions
	Exchanges               []ExchangeRequest
	TokenErrors             int // token requests of any grant answered with an error
	Userinfo                int
	Revocations             []RevocationRequest
	EndSessions             []EndSessionRequest
	// DPoPProofs counts accepted DPoP proofs (token and userinfo requests);
	// DPoPNonceChallenges the use_dpop_nonce answers (RFC 9449 §8).
	DPoPProofs          int
	DPoPNonceChallenges int
}

// RevocationRequest is one request to the revocation endpoint.
type RevocationRequest struct {
	Token        string
	TypeHint     string
	ClientID     string // the client that authenticated, or that tried to
	ClientAuthOK bool
}

// EndSessionRequest is one request to the end-session endpoint.
type EndSessionRequest struct {
	Params url.Values
	// IDTokenHintKnown is true when id_token_hint is an ID token this
	// provider issued.
	IDTokenHintKnown bool
}

// Stats returns a snapshot of the counters.
func (p *Provider) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Revocations = slices.Clone(s.Revocations)
	s.Exchanges = slices.Clone(p.exchanges)
	s.EndSessions = slices.Clone(s.EndSessions)
	for i := range s.EndSessions {
		s.EndSessions[i].Params = cloneValues(s.EndSessions[i].Params)
	}
	return s
}

// ExchangeRequest is one RFC 8693 token exchange the provider answered.
type ExchangeRequest struct {
	SubjectToken, Resource, Audience string
	// Issued is the access token given in exchange.
	Issued string
}

// LastAuthorize returns the parameters of the last authorization request,
// or nil if there was none.
func (p *Provider) LastAuthorize() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cloneValues(p.lastAuthorize)
}

// LastTokenRequest returns the form and headers of the last token request.
func (p *Provider) LastTokenRequest() (url.Values, http.Header) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cloneValues(p.lastTokenForm), p.lastTokenHdr.Clone()
}

// LastSID returns the session id of the last successful authorization, the
// `sid` its ID tokens carry ("" with WithSID(false)).
func (p *Provider) LastSID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastSID
}

// IssuedTokens returns every access, refresh and ID token value issued so
// far, in order, for leak tests that search responses and logs.
func (p *Provider) IssuedTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.issued)
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// randomString returns prefix followed by 256 random bits in base64url.
func randomString(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// TokenClient returns the client an access token was issued to, so a test
// can check which client's token an upstream received.
func (p *Provider) TokenClient(accessToken string) (clientID string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.access[accessToken]
	if !ok {
		return "", false
	}
	return at.clientID, true
}
