package devprovider

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Client authentication methods a Client may use at the token, revocation
// and introspection endpoints.
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none" // public client; PKCE is its only protection
)

// Grant types a Client may be allowed.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Default lifetimes used when the Options fields are zero.
const (
	DefaultAccessTokenTTL  = 5 * time.Minute
	DefaultIDTokenTTL      = 5 * time.Minute
	DefaultRefreshTokenTTL = 8 * time.Hour
)

const (
	loginPath       = "/login"
	loggedOutPath   = "/logged-out"
	discoveryPath   = "/.well-known/openid-configuration"
	sessionCookie   = "gatehouse_devprovider_session"
	maxFormBodySize = 64 << 10
)

// User is an account that can sign in at the provider.
type User struct {
	// ID is the subject (sub claim); empty means Username.
	ID       string
	Username string
	// Password is compared in constant time; it is configuration, not a hash.
	Password      string
	Name          string
	Email         string
	EmailVerified bool
}

// Client is a registered relying party.
type Client struct {
	ID string
	// Secret is required unless AuthMethod is AuthMethodNone.
	Secret string
	// RedirectURIs are matched exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are matched exactly at end_session_endpoint.
	PostLogoutRedirectURIs []string
	// AuthMethod is AuthMethodBasic (the default), AuthMethodPost or
	// AuthMethodNone.
	AuthMethod string
	// GrantTypes the client may use; empty means GrantAuthorizationCode and
	// GrantRefreshToken. Refresh tokens are issued only when the client has
	// GrantRefreshToken and was granted the offline_access scope.
	GrantTypes []string
	// BackchannelLogoutURI, when set, receives a logout token (OpenID
	// Connect Back-Channel Logout 1.0) whenever a provider session in which
	// the client signed a user in ends. It must be on a loopback host.
	BackchannelLogoutURI string
}

// Options configures a Provider. Only Issuer is required.
type Options struct {
	// Issuer is the provider's URL, for example http://127.0.0.1:9000. Its
	// host MUST be a loopback address or localhost, and it has no path.
	Issuer string
	// Clients are the registered relying parties.
	Clients []Client
	// Users who can sign in; empty means alice (password "alice") and bob
	// (password "bob"), and the login page then shows those credentials.
	Users []User
	// Lifetimes; zero means DefaultAccessTokenTTL, DefaultIDTokenTTL and
	// DefaultRefreshTokenTTL. RefreshTokenTTL also bounds a provider login
	// session. Rotation gives each new refresh token a full lifetime.
	AccessTokenTTL, IDTokenTTL, RefreshTokenTTL time.Duration
	// AutoLogin, when set, names a user that the login step signs in at once
	// instead of showing the form, for tests without a browser. It does not
	// make prompt=none succeed by itself: that still needs a provider session
	// cookie from an earlier sign-in.
	AutoLogin string
	// Now is the clock for the provider's own expiry decisions (codes,
	// sessions, stored tokens) and for the exp of access tokens and the
	// iat/exp of logout tokens; nil means time.Now. The op package sets the
	// other iat claims and the ID token's exp from the wall clock, so a test
	// clock should be the wall clock plus an offset.
	Now func() time.Time
	// SkipIssParameter leaves out the RFC 9207 iss authorization response
	// parameter and its discovery flag, to test clients against providers
	// that lack it.
	SkipIssParameter bool
	// HTTPClient delivers back-channel logout tokens; nil means a client
	// with a 5 second timeout that does not follow redirects.
	HTTPClient *http.Client
	// Logger receives the provider's own events; nil means slog.Default().
	// The op package logs protocol errors to slog.Default().
	Logger *slog.Logger
}

// Stats counts what the provider has observed since New.
type Stats struct {
	// AuthorizeRequests counts valid authorization requests stored.
	AuthorizeRequests int
	// Logins counts users signed in (form or AutoLogin); FailedLogins counts
	// rejected form submissions.
	Logins, FailedLogins int
	// CodeGrants counts authorization codes exchanged for tokens.
	CodeGrants int
	// RefreshGrants counts successful refresh_token grants.
	RefreshGrants int
	// RefreshReuseRejected counts replays of rotated refresh tokens, each of
	// which revoked its token family.
	RefreshReuseRejected int
	// ClientCredentialsGrants counts client_credentials grants.
	ClientCredentialsGrants int
	// Revocations counts authenticated RFC 7009 revocation requests;
	// LastRevocationHint is the token_type_hint of the latest one.
	Revocations        int
	LastRevocationHint string
	// EndSessions counts accepted RP-initiated logout requests.
	EndSessions int
	// BackchannelLogouts counts logout tokens a relying party accepted;
	// BackchannelLogoutFailures counts those it refused or never received.
	BackchannelLogouts, BackchannelLogoutFailures int
}

// Provider is a development OpenID Provider. It is an http.Handler that
// serves every endpoint at the issuer's root and is safe for concurrent use.
type Provider struct {
	issuer       string
	store        *storage
	op           *op.Provider
	logger       *slog.Logger
	secureCookie bool
	showUsers    bool // the default users are in effect; the form lists them
	sendIss      bool
	callbackURL  func(context.Context, string) string
}

var _ http.Handler = (*Provider)(nil)

// New returns a provider for opts. It generates a fresh RS256 signing key.
func New(opts Options) (*Provider, error) {
	iss, err := checkIssuer(opts.Issuer)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	httpClient := opts.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{
			Timeout: 5 * time.Second,
			// A logout token is not re-sent to wherever a redirect points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	s := &storage{
		issuer:         iss,
		httpClient:     httpClient,
		now:            now,
		logger:         logger,
		accessTTL:      orDefault(opts.AccessTokenTTL, DefaultAccessTokenTTL),
		idTTL:          orDefault(opts.IDTokenTTL, DefaultIDTokenTTL),
		refreshTTL:     orDefault(opts.RefreshTokenTTL, DefaultRefreshTokenTTL),
		clients:        make(map[string]*client),
		users:          make(map[string]*User),
		byName:         make(map[string]*User),
		authRequests:   make(map[string]*authRequest),
		codes:          make(map[string]string),
		usedCodes:      make(map[string]usedCode),
		accessTokens:   make(map[string]*accessToken),
		refreshTokens:  make(map[string]*refreshToken),
		sessions:       make(map[string]*loginSession),
		sessionCookies: make(map[string]string),
	}
	users := opts.Users
	showUsers := len(users) == 0
	if showUsers {
		users = []User{
			{Username: "alice", Password: "alice", Name: "Alice Example", Email: "alice@example.com", EmailVerified: true},
			{Username: "bob", Password: "bob", Name: "Bob Example", Email: "bob@example.com", EmailVerified: true},
		}
	}
	var problems []error
	for _, u := range users {
		if u.ID == "" {
			u.ID = u.Username
		}
		switch {
		case u.Username == "":
			problems = append(problems, errors.New("devprovider: user with empty username"))
		case s.byName[u.Username] != nil || s.users[u.ID] != nil:
			problems = append(problems, fmt.Errorf("devprovider: duplicate user %q", u.Username))
		default:
			s.users[u.ID] = &u
			s.byName[u.Username] = &u
		}
	}
	for _, c := range opts.Clients {
		oc, err := newClient(c, s.idTTL)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if s.clients[c.ID] != nil {
			problems = append(problems, fmt.Errorf("devprovider: duplicate client %q", c.ID))
			continue
		}
		s.clients[c.ID] = oc
	}
	if opts.AutoLogin != "" && s.byName[opts.AutoLogin] == nil {
		problems = append(problems, fmt.Errorf("devprovider: auto-login user %q is not configured", opts.AutoLogin))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	s.autoLogin = opts.AutoLogin

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devprovider: generate signing key: %w", err)
	}
	thumb, err := (&jose.JSONWebKey{Key: &rsaKey.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devprovider: key id: %w", err)
	}
	s.key = &signingKey{id: base64.RawURLEncoding.EncodeToString(thumb), key: rsaKey}

	cfg := &op.Config{
		DefaultLogoutRedirectURI: loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
		// Back-Channel Logout 1.0 §2.1.
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	if _, err := rand.Read(cfg.CryptoKey[:]); err != nil {
		return nil, fmt.Errorf("devprovider: crypto key: %w", err)
	}
	provider, err := op.NewProvider(cfg, s, op.StaticIssuer(iss),
		op.WithAllowInsecure(), // plain http, on loopback only (checkIssuer)
		op.WithCORSOptions(nil),
	)
	if err != nil {
		return nil, fmt.Errorf("devprovider: %w", err)
	}
	return &Provider{
		issuer:       iss,
		store:        s,
		op:           provider,
		logger:       logger,
		secureCookie: strings.HasPrefix(iss, "https:"),
		showUsers:    showUsers,
		sendIss:      !opts.SkipIssParameter,
		callbackURL:  op.AuthCallbackURL(provider),
	}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// checkIssuer accepts an http or https URL on a loopback host with no path,
// query or fragment.
func checkIssuer(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", fmt.Errorf("devprovider: issuer: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("devprovider: issuer %q: scheme must be http or https", issuer)
	}
	if !config.IsLoopback(u.Hostname()) {
		return "", fmt.Errorf("devprovider: issuer %q: host must be loopback (development provider)", issuer)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("devprovider: issuer %q: must be scheme://host[:port] only", issuer)
	}
	return issuer, nil
}

func newClient(c Client, idTTL time.Duration) (*client, error) {
	if c.ID == "" {
		return nil, errors.New("devprovider: client with empty id")
	}
	oc := &client{cfg: c, idTokenTTL: idTTL}
	switch c.AuthMethod {
	case "", AuthMethodBasic:
		oc.method = oidc.AuthMethodBasic
	case AuthMethodPost:
		oc.method = oidc.AuthMethodPost
	case AuthMethodNone:
		oc.method = oidc.AuthMethodNone
	default:
		return nil, fmt.Errorf("devprovider: client %q: unknown auth method %q", c.ID, c.AuthMethod)
	}
	if oc.method != oidc.AuthMethodNone && c.Secret == "" {
		return nil, fmt.Errorf("devprovider: client %q: secret required for %s", c.ID, oc.method)
	}
	grants := c.GrantTypes
	if len(grants) == 0 {
		grants = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	for _, g := range grants {
		switch g {
		case GrantAuthorizationCode:
			oc.grants = append(oc.grants, oidc.GrantTypeCode)
		case GrantRefreshToken:
			oc.grants = append(oc.grants, oidc.GrantTypeRefreshToken)
		case GrantClientCredentials:
			if oc.method == oidc.AuthMethodNone {
				return nil, fmt.Errorf("devprovider: client %q: client_credentials needs a secret", c.ID)
			}
			oc.grants = append(oc.grants, oidc.GrantTypeClientCredentials)
		default:
			return nil, fmt.Errorf("devprovider: client %q: unknown grant type %q", c.ID, g)
		}
	}
	if c.BackchannelLogoutURI != "" {
		u, err := url.Parse(c.BackchannelLogoutURI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !config.IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("devprovider: client %q: back-channel logout URI must be an http(s) URL on a loopback host", c.ID)
		}
	}
	if slices.Contains(oc.grants, oidc.GrantTypeCode) && len(c.RedirectURIs) == 0 {
		return nil, fmt.Errorf("devprovider: client %q: authorization_code needs a redirect URI", c.ID)
	}
	return oc, nil
}

// Issuer returns the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// Handler returns p; it exists for symmetry with servers that take a handler.
func (p *Provider) Handler() http.Handler { return p }

// ServeHTTP serves the protocol endpoints, the login page and the
// signed-out page.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	authz := p.op.AuthorizationEndpoint().Relative()
	if p.sendIss {
		switch r.URL.Path {
		case authz, authz + "/callback", loginPath:
			w = &issWriter{ResponseWriter: w, issuer: p.issuer}
		}
	}
	switch r.URL.Path {
	case loginPath:
		p.serveLogin(w, r)
		return
	case loggedOutPath:
		p.serveLoggedOut(w, r)
		return
	case discoveryPath:
		p.serveDiscovery(w, r)
		return
	case p.op.RevocationEndpoint().Relative():
		// Only for Stats: op does not pass token_type_hint to storage.
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBodySize)
		if err := r.ParseForm(); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), revocationHintKey{}, r.PostForm.Get("token_type_hint")))
		}
	case p.op.EndSessionEndpoint().Relative():
		if c, err := r.Cookie(sessionCookie); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), sessionCookieKey{}, c.Value))
		}
	}
	p.op.ServeHTTP(w, r)
}

// serveDiscovery serves op's metadata with prompt_values_supported and
// authorization_response_iss_parameter_supported (RFC 9207 §3) added, and
// with what the provider does not offer (implicit and hybrid flows, the
// JWT bearer grant, device authorization) left out.
func (p *Provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	raw, err := json.Marshal(op.CreateDiscoveryConfig(ctx, p.op, p.store))
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	doc["prompt_values_supported"] = []string{oidc.PromptNone, oidc.PromptLogin}
	doc["response_types_supported"] = []string{string(oidc.ResponseTypeCode)}
	doc["response_modes_supported"] = []string{"query"}
	doc["grant_types_supported"] = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
	doc["token_endpoint_auth_methods_supported"] = []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone}
	doc["authorization_response_iss_parameter_supported"] = p.sendIss
	delete(doc, "device_authorization_endpoint")
	delete(doc, "request_object_signing_alg_values_supported")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(doc)
}

// Stats returns a snapshot of the provider's counters.
func (p *Provider) Stats() Stats {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	return p.store.stats
}

// SetAutoLogin changes Options.AutoLogin; "" turns it off. It returns an
// error for a username that is not configured. Safe for concurrent use.
func (p *Provider) SetAutoLogin(username string) error {
	if username != "" && p.store.byName[username] == nil {
		return fmt.Errorf("devprovider: auto-login user %q is not configured", username)
	}
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.autoLogin = username
	return nil
}

// EndSessionsOf ends every provider login session of the user with the
// given username, with the refresh and access tokens issued in them, and
// sends the back-channel logout tokens, as an administrator's "sign out
// everywhere" would. It returns the sids ended, sorted.
func (p *Provider) EndSessionsOf(ctx context.Context, username string) []string {
	u := p.store.byName[username]
	if u == nil {
		return nil
	}
	return p.store.endSessions(ctx, func(ls *loginSession) bool { return ls.userID == u.ID })
}

// Serve serves p on ln until ctx is done, then shuts down gracefully. ln
// MUST be a loopback listener whose port is the issuer's.
func (p *Provider) Serve(ctx context.Context, ln net.Listener) error {
	if err := checkListener(ln, p.issuer); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.logger.Handler(), slog.LevelWarn),
	}
	stop := context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	})
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("devprovider: serve: %w", err)
}

// Serve builds a provider from opts and serves it on ln until ctx is done.
// An empty opts.Issuer becomes http://<ln address>.
func Serve(ctx context.Context, ln net.Listener, opts Options) error {
	if opts.Issuer == "" {
		opts.Issuer = "http://" + ln.Addr().String()
	}
	p, err := New(opts)
	if err != nil {
		return err
	}
	return p.Serve(ctx, ln)
}

func checkListener(ln net.Listener, issuer string) error {
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !addr.IP.IsLoopback() {
		return fmt.Errorf("devprovider: listener %s is not on a loopback address (development provider)", ln.Addr())
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("devprovider: issuer: %w", err)
	}
	if port := u.Port(); port != "" && port != fmt.Sprint(addr.Port) {
		return fmt.Errorf("devprovider: listener port %d does not match issuer %s", addr.Port, issuer)
	}
	return nil
}
