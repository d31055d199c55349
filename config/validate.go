package config

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
)

// Validate reports every problem of c at once, joined. It changes nothing.
// Call it after SetDefaults.
func (c *Config) Validate() error {
	if len(c.Apps) == 0 {
		return c.validateOne()
	}
	var p problems
	top := map[string]bool{}
	if err := c.validateOne(); err != nil {
		for _, e := range unjoin(err) {
			top[e.Error()] = true
			if c.ServesTopLevel() {
				p = append(p, e)
			}
		}
	}
	c.validateApps(&p, top)
	// A problem of the shared keys shows in every app: report it once.
	seen := map[string]bool{}
	out := p[:0]
	for _, e := range p {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// validateOne checks the configuration of one app.
func (c *Config) validateOne() error {
	var p problems

	if c.Server.PublicURL == "" {
		p.add("server.public_url is required: the URL browsers use to reach Gatehouse")
	} else if u, err := url.Parse(c.Server.PublicURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		p.add("server.public_url %q must be an absolute http(s) URL", c.Server.PublicURL)
	} else {
		if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
			p.add("server.public_url %q uses plain http on a non-loopback host: cookies and tokens would cross the network in clear; use https (plain http is accepted only for localhost and loopback addresses)", c.Server.PublicURL)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			p.add("server.public_url %q must be an origin only (scheme://host[:port]), with no path, query or credentials", c.Server.PublicURL)
		}
	}
	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		p.add("server.listen %q must be host:port", c.Server.Listen)
	}
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		p.add("server.tls_cert and server.tls_key go together")
	}
	if c.Server.ReadHeaderTimeout < 0 || c.Server.IdleTimeout < 0 || c.Server.WriteTimeout < 0 || c.Server.MaxHeaderBytes < 0 || c.Server.MaxBodyBytes < 0 {
		p.add("server timeouts and limits must not be negative")
	}
	if r := c.Tracing.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		p.add("tracing.sample_ratio must be between 0 and 1")
	}
	if c.Tracing.OTLPEndpoint != "" {
		if u, err := url.Parse(c.Tracing.OTLPEndpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			p.add("tracing.otlp_endpoint %q must be an http(s) URL", c.Tracing.OTLPEndpoint)
		}
	}
	for _, tp := range c.Server.TrustedProxies {
		if _, err := ParsePrefix(tp); err != nil {
			p.add("server.trusted_proxies: %q is not an IP address or CIDR range", tp)
		}
	}

	if c.OIDC.Issuer == "" {
		p.add("oidc.issuer is required")
	} else if u, err := url.Parse(c.OIDC.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		p.add("oidc.issuer %q must be an absolute URL", c.OIDC.Issuer)
	} else if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		p.add("oidc.issuer %q uses plain http on a non-loopback host; use https", c.OIDC.Issuer)
	}
	if c.OIDC.ClientID == "" {
		p.add("oidc.client_id is required")
	}
	switch c.OIDC.AuthMethod {
	case "client_secret_basic", "client_secret_post":
		if c.OIDC.ClientSecret == "" {
			p.add("oidc.client_secret (or client_secret_file) is required: Gatehouse is a confidential client")
		}
	case "private_key_jwt":
		if c.OIDC.PrivateKeyFile == "" {
			p.add("oidc.private_key_file is required with auth_method: private_key_jwt")
		}
	default:
		p.add("oidc.auth_method %q must be client_secret_basic, client_secret_post or private_key_jwt", c.OIDC.AuthMethod)
	}
	for name, path := range map[string]string{"server.health_path": c.Server.HealthPath, "server.ready_path": c.Server.ReadyPath} {
		if !strings.HasPrefix(path, "/") {
			p.add("%s %q must start with /", name, path)
		}
	}
	if c.OIDC.DPoP != DPoPAuto && c.OIDC.DPoP != DPoPOff {
		p.add("oidc.dpop %q must be auto or off", c.OIDC.DPoP)
	}
	if !strings.HasPrefix(c.OIDC.CallbackPath, "/") {
		p.add("oidc.callback_path %q must start with /", c.OIDC.CallbackPath)
	}
	for _, alg := range c.OIDC.SigningAlgs {
		if !slices.Contains(asymmetricAlgs, alg) {
			p.add("oidc.signing_algs: %q is not allowed (use one of %s)", alg, strings.Join(asymmetricAlgs, ", "))
		}
	}
	for k := range c.OIDC.AuthParams {
		if slices.Contains(protocolParams, k) {
			p.add("oidc.auth_params: %q is set by Gatehouse and cannot be overridden", k)
		}
	}
	if c.OIDC.PostLogoutRedirectURI != "" {
		if u, err := url.Parse(c.OIDC.PostLogoutRedirectURI); err != nil || !u.IsAbs() {
			p.add("oidc.post_logout_redirect_uri %q must be an absolute URL", c.OIDC.PostLogoutRedirectURI)
		}
	}
	if c.OIDC.RefreshSkew < 0 || c.OIDC.Timeout < 0 {
		p.add("oidc.refresh_skew and oidc.timeout must not be negative")
	}

	switch c.Session.Store {
	case StoreMemory:
	case StoreBolt:
		if c.Session.BoltPath == "" {
			p.add("session.bolt_path is required with store: bolt")
		}
		if len(c.Session.Keys) == 0 {
			p.add("session.keys is required with store: %s: tokens are sealed at rest; generate one with `gatehouse keys generate`", c.Session.Store)
		}
	case StoreRedis:
		if c.Session.RedisURL == "" && len(c.Redis.Addrs) == 0 {
			p.add("session.redis_url (or redis.addrs) is required with store: redis")
		}
		if c.Session.RedisURL != "" && len(c.Redis.Addrs) > 0 {
			p.add("set session.redis_url or redis.addrs, not both")
		}
		if c.Session.RedisURL != "" {
			if u, err := url.Parse(c.Session.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
				p.add("session.redis_url must be a redis://, rediss:// or unix:// URL")
			}
		}
		if len(c.Session.Keys) == 0 {
			p.add("session.keys is required with store: redis: tokens are sealed at rest; generate one with `gatehouse keys generate`")
		}
		if c.Redis.Cluster && c.Redis.MasterName != "" {
			p.add("redis: cluster and master_name (Sentinel) exclude each other")
		}
		if c.Redis.Cluster && !strings.Contains(c.Redis.KeyPrefix, "{") {
			p.add("redis.key_prefix %q needs a {hash tag} on a Cluster", c.Redis.KeyPrefix)
		}
	case StorePostgres:
		// The DSN may hold a password: no message quotes it.
		if c.Postgres.DSN == "" && c.Postgres.DSNFile == "" {
			p.add("postgres.dsn (or dsn_file) is required with store: postgres")
		}
		if scheme, _, ok := strings.Cut(c.Postgres.DSN, "://"); ok && scheme != "postgres" && scheme != "postgresql" {
			p.add("postgres.dsn must be a postgres:// or postgresql:// URL, or key=value pairs")
		}
		if len(c.Session.Keys) == 0 {
			p.add("session.keys is required with store: postgres: tokens are sealed at rest; generate one with `gatehouse keys generate`")
		}
	default:
		p.add("session.store %q must be memory, bolt, redis or postgres", c.Session.Store)
	}
	if c.Redis.Timeout < 0 || c.Redis.PoolSize < 0 || c.Redis.LocalCacheTTL < 0 {
		p.add("redis.timeout, redis.pool_size and redis.local_cache_ttl must not be negative")
	}
	if c.Admin.Listen != "off" {
		if host, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			p.add("admin.listen %q must be host:port or off", c.Admin.Listen)
		} else if !IsLoopback(host) && c.Admin.Token == "" {
			p.add("admin.listen %q is not a loopback address: set admin.token (or token_file) so the admin API is not open", c.Admin.Listen)
		}
	}
	ids := map[string]bool{}
	for i, k := range c.Session.Keys {
		key, err := seal.ParseKey(k)
		if err != nil {
			p.add("session.keys[%d]: %v", i, err)
			continue
		}
		if ids[key.ID] {
			p.add("session.keys[%d]: key id %q appears twice", i, key.ID)
		}
		ids[key.ID] = true
	}
	if c.Session.IdleTimeout <= 0 || c.Session.AbsoluteTimeout <= 0 {
		p.add("session.idle_timeout and session.absolute_timeout must be positive")
	} else if c.Session.IdleTimeout > c.Session.AbsoluteTimeout {
		p.add("session.idle_timeout (%s) must not exceed session.absolute_timeout (%s)", c.Session.IdleTimeout, c.Session.AbsoluteTimeout)
	}
	if c.Session.MaxPerUser < 1 {
		p.add("session.max_per_user (%d) must be at least 1", c.Session.MaxPerUser)
	}
	if !strings.HasPrefix(c.Session.CookieName, "__Host-") || len(c.Session.CookieName) == len("__Host-") {
		p.add("session.cookie_name %q must start with __Host- (RFC 6265bis cookie prefix)", c.Session.CookieName)
	} else if !validToken(c.Session.CookieName) {
		p.add("session.cookie_name %q has characters a cookie name cannot hold", c.Session.CookieName)
	}
	if c.Session.SameSite != "lax" && c.Session.SameSite != "strict" {
		p.add("session.same_site %q must be lax or strict", c.Session.SameSite)
	}

	if !strings.HasPrefix(c.BFF.Prefix, "/") || c.BFF.Prefix == "/" {
		p.add("bff.prefix %q must be a path such as /bff", c.BFF.Prefix)
	}
	if !validToken(c.BFF.CSRFHeader) {
		p.add("bff.csrf_header %q is not a valid header name", c.BFF.CSRFHeader)
	}

	prefixes := map[string]bool{}
	for i, r := range c.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		if !strings.HasPrefix(r.Prefix, "/") || !strings.HasSuffix(r.Prefix, "/") || r.Prefix == "/" {
			p.add("%s.prefix %q must start and end with / and not be / alone", where, r.Prefix)
		} else if strings.Contains(r.Prefix, "..") || strings.Contains(r.Prefix, "//") {
			p.add("%s.prefix %q must be a clean path", where, r.Prefix)
		}
		if prefixes[r.Prefix] {
			p.add("%s.prefix %q appears twice", where, r.Prefix)
		}
		prefixes[r.Prefix] = true
		if strings.HasPrefix(r.Prefix, c.BFF.Prefix+"/") || r.Prefix == c.BFF.Prefix+"/" {
			p.add("%s.prefix %q overlaps the management endpoints under %s", where, r.Prefix, c.BFF.Prefix)
		}
		if u, err := url.Parse(r.Upstream); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
			p.add("%s.upstream %q must be an absolute http(s) URL without credentials", where, r.Upstream)
		}
		if !slices.Contains(tokenModes, r.Token) {
			p.add("%s.token %q must be one of user, client, user_or_client, optional_user, none", where, r.Token)
		}
		for _, m := range r.Methods {
			if !validToken(m) || strings.ToUpper(m) != m {
				p.add("%s.methods: %q is not an upper-case HTTP method", where, m)
			}
		}
		if r.Timeout < 0 {
			p.add("%s.timeout must not be negative", where)
		}
		// A user route's resource/audience is served by RFC 8693 token
		// exchange; refuse it without, rather than forward the session's
		// general-purpose token to an API that expects another.
		if r.TokenExchange && r.Token != TokenUser && r.Token != TokenOptionalUser {
			p.add("%s: token_exchange needs token: user or optional_user", where)
		}
		if r.TokenExchange && r.Resource == "" && r.Audience == "" {
			p.add("%s: token_exchange needs a resource or an audience", where)
		}
		if (r.Resource != "" || r.Audience != "") && r.Token != TokenClient && !r.TokenExchange {
			p.add("%s: resource/audience on a user route need token_exchange: true (RFC 8693)", where)
		}
		p.route(c, where, &r)
	}

	if c.Frontend.Upstream != "" && c.Frontend.StaticDir != "" {
		p.add("frontend: set upstream or static_dir, not both")
	}
	if c.Frontend.Upstream != "" {
		if u, err := url.Parse(c.Frontend.Upstream); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			p.add("frontend.upstream %q must be an absolute http(s) URL", c.Frontend.Upstream)
		}
	}
	for name := range c.Frontend.Headers {
		if !validToken(name) {
			p.add("frontend.headers: %q is not a valid header name", name)
		}
	}

	if c.Log.Format != "text" && c.Log.Format != "json" {
		p.add("log.format %q must be text or json", c.Log.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level %q must be debug, info, warn or error", c.Log.Level)
	}
	return errors.Join(p...)
}

// route checks a route's require, identity and forward_cookies.
func (p *problems) route(c *Config, where string, r *Route) {
	for name, values := range r.Require.Claims {
		if name == "" {
			p.add("%s.require.claims: a claim name is empty", where)
		}
		if len(values) == 0 {
			p.add("%s.require.claims.%s lists no value: nothing would match", where, name)
		}
	}
	for _, s := range r.Require.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			p.add("%s.require.scopes: %q is not a scope (RFC 6749 §3.3)", where, s)
		}
	}
	for _, v := range r.Require.ACR {
		if v == "" || strings.ContainsAny(v, " \t") {
			p.add("%s.require.acr: %q is not an acr value", where, v)
		}
	}
	if r.Require.MaxAge < 0 || (r.Require.MaxAge > 0 && r.Require.MaxAge < time.Second) {
		p.add("%s.require.max_age must be positive and at least 1s", where)
	}
	seen := map[string]string{}
	for name, claim := range r.Identity.Headers {
		folded := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		switch {
		case !validToken(name):
			p.add("%s.identity.headers: %q is not a valid header name", where, name)
		case reservedHeader(folded, c.BFF.CSRFHeader):
			p.add("%s.identity.headers: %q is a header Gatehouse or HTTP itself sets; choose another name", where, name)
		case seen[folded] != "":
			p.add("%s.identity.headers: %q and %q name the same header", where, seen[folded], name)
		}
		seen[folded] = name
		if claim == "" {
			p.add("%s.identity.headers.%s names no claim", where, name)
		}
	}
	for _, name := range r.ForwardCookies {
		switch {
		case !validToken(name):
			p.add("%s.forward_cookies: %q is not a cookie name", where, name)
		case hasFoldPrefix(name, c.Session.CookieName) || hasFoldPrefix(name, "__Host-gatehouse"):
			p.add("%s.forward_cookies: %q is a Gatehouse cookie; it never reaches an upstream", where, name)
		}
	}
}

// reservedHeader reports whether the header (lower case, "-" form) is one
// an identity header must not replace: hop-by-hop headers (RFC 9110
// §7.6.1), credentials, framing, and the headers Gatehouse sets itself.
func reservedHeader(folded, csrfHeader string) bool {
	switch folded {
	case "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
		"proxy-authenticate", "proxy-authorization", "authorization", "cookie", "set-cookie", "dpop",
		"host", "content-length", "content-type", "content-encoding", "forwarded", "x-request-id",
		strings.ToLower(csrfHeader):
		return true
	}
	return strings.HasPrefix(folded, "x-gatehouse-") || strings.HasPrefix(folded, "x-forwarded-")
}

func hasFoldPrefix(s, prefix string) bool {
	return prefix != "" && len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

type problems []error

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Errorf(format, args...))
}

var (
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	tokenModes     = []TokenMode{TokenUser, TokenClient, TokenUserOrClient, TokenOptionalUser, TokenNone}
	protocolParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "response_mode", "prompt", "request", "request_uri"}
)

// AsymmetricAlgs returns the ID token signing algorithms Gatehouse can accept.
func AsymmetricAlgs() []string { return slices.Clone(asymmetricAlgs) }

// IsLoopback reports whether host names this machine: "localhost", a
// *.localhost name, or a loopback IP address.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// ParsePrefix parses an IP address or CIDR range.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// SameSiteMode returns the http.SameSite for the configured session.same_site.
func (s Session) SameSiteMode() http.SameSite {
	if s.SameSite == "strict" {
		return http.SameSiteStrictMode
	}
	return http.SameSiteLaxMode
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
