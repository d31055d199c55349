package config

import (
	"time"
)

// Config is the whole Gatehouse configuration. The zero value of every
// field means its documented default, filled in by SetDefaults.
type Config struct {
	Server   Server   `yaml:"server"`
	OIDC     OIDC     `yaml:"oidc"`
	Session  Session  `yaml:"session"`
	BFF      BFF      `yaml:"bff"`
	Routes   []Route  `yaml:"routes"`
	Frontend Frontend `yaml:"frontend"`
	Redis    Redis    `yaml:"redis"`
	Postgres Postgres `yaml:"postgres"`
	Admin    Admin    `yaml:"admin"`
	Tracing  Tracing  `yaml:"tracing"`
	Log      Log      `yaml:"log"`
	// Apps are more applications on the same gateway (see App). The
	// top-level keys still configure one app of their own when they have
	// routes or a frontend (see ServesTopLevel).
	Apps []App `yaml:"apps"`
	// Identity configures the identity assertions of every route (per
	// route: routes[].identity).
	Identity struct {
		// SigningKeyFile names the PEM file of the EC P-256 private key(s)
		// that sign assertions: the first signs, the others are only
		// published (keep the old key there while rotating). Default: a
		// key generated on first use and kept, sealed, in the session
		// store, so that every replica signs with the same key.
		SigningKeyFile string `yaml:"signing_key_file"`
	} `yaml:"identity"`
}

// Server configures the main listener.
type Server struct {
	// Listen is the address to serve on. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// PublicURL is the origin browsers use to reach Gatehouse, such as
	// "https://app.example.com". It sets the redirect URI, the CSRF origin
	// and X-Forwarded-Host/Proto. Plain http is accepted only for loopback
	// hosts. Required.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies lists the addresses or CIDR ranges of reverse proxies
	// in front of Gatehouse whose X-Forwarded-For and X-Request-Id are
	// believed. Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	// Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TLSCert and TLSKey name PEM files to serve HTTPS with; both or
	// neither. They are reloaded when they change on disk.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// WriteTimeout bounds writing a response of the session endpoints;
	// proxied API and frontend responses are bounded by their route's
	// timeout instead, so that streams are not cut. Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxHeaderBytes bounds request headers; larger get 431. Default 32 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds request bodies of the session endpoints; larger
	// get 413. Default 64 KiB. API routes are not limited by Gatehouse.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// HealthPath and ReadyPath serve liveness and readiness on the main
	// listener, for load balancers. Default "<bff.prefix>/healthz" and
	// "<bff.prefix>/readyz"; the admin listener serves /healthz and /readyz
	// too.
	HealthPath string `yaml:"health_path"`
	ReadyPath  string `yaml:"ready_path"`
	// RateLimit limits requests per client IP to the login, callback and
	// back-channel endpoints: this many per minute, with the same burst.
	// Default 60; negative turns it off.
	RateLimit int `yaml:"rate_limit"`
}

// OIDC configures the provider and Gatehouse's client registration there.
type OIDC struct {
	// Issuer is the provider's issuer URL; discovery must report exactly
	// this issuer. Required.
	Issuer string `yaml:"issuer"`
	// ClientID is Gatehouse's client id at the provider. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the client secret. Prefer ${VAR} or ClientSecretFile.
	ClientSecret string `yaml:"client_secret"`
	// ClientSecretFile names a file holding the client secret; trailing
	// white space is ignored. Exclusive with ClientSecret.
	ClientSecretFile string `yaml:"client_secret_file"`
	// AuthMethod is the token endpoint authentication:
	// "client_secret_basic" (default), "client_secret_post" or
	// "private_key_jwt" (RFC 7523, recommended by RFC 9700 §2.5: no shared
	// secret; needs PrivateKeyFile).
	AuthMethod string `yaml:"auth_method"`
	// PrivateKeyFile names the PEM private key (RSA ≥ 2048 bits, EC P-256/
	// P-384/P-521 or Ed25519) that signs private_key_jwt assertions; register
	// its public key at the provider. PrivateKeyID is its kid, if the
	// provider needs one.
	PrivateKeyFile string `yaml:"private_key_file"`
	PrivateKeyID   string `yaml:"private_key_id"`
	// Scopes to request. Default [openid, profile, offline_access]; openid
	// is always added.
	Scopes []string `yaml:"scopes"`
	// CallbackPath is the redirect URI's path on PublicURL. Default
	// "<bff.prefix>/callback". Register PublicURL+CallbackPath at the provider.
	CallbackPath string `yaml:"callback_path"`
	// PostLogoutRedirectURI is sent to the provider's end_session_endpoint.
	// Default PublicURL + "/". It must be registered at the provider.
	PostLogoutRedirectURI string `yaml:"post_logout_redirect_uri"`
	// LogoutIDTokenHint sends the ID token as id_token_hint to the
	// end-session endpoint. The hint travels through the browser's address
	// bar, so by default Gatehouse identifies itself with client_id only;
	// enable this for providers that require the hint. Default false.
	LogoutIDTokenHint bool `yaml:"logout_id_token_hint"`
	// DPoP sender-constrains user access tokens (RFC 9449, RFC 9700
	// §2.2.1): DPoPAuto (default) uses DPoP when the provider advertises
	// dpop_signing_alg_values_supported with ES256, DPoPOff never does.
	// Each session gets its own key, sealed with the session; upstream APIs
	// then receive `Authorization: DPoP` and a proof per request.
	DPoP DPoPMode `yaml:"dpop"`
	// UserInfo makes Gatehouse call the UserInfo endpoint after login and
	// merge its claims (its sub must match the ID token's). Default false.
	UserInfo bool `yaml:"userinfo"`
	// SigningAlgs are the ID token algorithms accepted. Default: the
	// asymmetric algorithms the provider advertises (RS256 when it
	// advertises none). HMAC and "none" are never accepted.
	SigningAlgs []string `yaml:"signing_algs"`
	// RevokeOnLogout revokes the refresh token (RFC 7009) at logout when the
	// provider has a revocation endpoint. Default (nil) true.
	RevokeOnLogout *bool `yaml:"revoke_on_logout"`
	// AuthParams are extra static parameters for the authorization request
	// (for example acr_values). Protocol parameters cannot be overridden.
	AuthParams map[string]string `yaml:"auth_params"`
	// RefreshSkew refreshes access tokens this long before they expire.
	// Default 60s.
	RefreshSkew time.Duration `yaml:"refresh_skew"`
	// Timeout bounds every call to the provider. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Session configures server-side sessions and their cookie.
type Session struct {
	// Store names the session store. Default StoreBolt.
	Store StoreKind `yaml:"store"`
	// BoltPath is the bolt database file. Default "./gatehouse.db".
	BoltPath string `yaml:"bolt_path"`
	// RedisURL is the Redis server for store: redis, such as
	// redis://:password@host:6379/0 or rediss:// for TLS. For Sentinel or
	// Cluster, use the redis block instead.
	RedisURL string `yaml:"redis_url"`
	// IdleTimeout ends a session unused this long. Default 30m, or
	// AbsoluteTimeout when that is set shorter.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteTimeout ends a session this long after login. Default 8h.
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
	// MaxPerUser caps the sessions one user (issuer and subject) holds in
	// this app: a sign-in beyond it ends the user's least recently used
	// session, so one account cannot fill the store. Default 50.
	MaxPerUser int `yaml:"max_per_user"`
	// CookieName names the session cookie; it must start with "__Host-".
	// Default "__Host-gatehouse".
	CookieName string `yaml:"cookie_name"`
	// SameSite is "lax" (default: the cookie rides the top-level return
	// from a cross-site provider) or "strict".
	SameSite string `yaml:"same_site"`
	// Keys seal session data at rest, each "id:base64-secret" (see
	// `gatehouse keys generate`). The first is used for new writes; all
	// are accepted for reads. Required for persistent stores; the memory
	// store uses a random per-process key when none is given.
	Keys []string `yaml:"keys"`
	// KeysFile names a file with one key per line, appended to Keys.
	KeysFile string `yaml:"keys_file"`
}

// BFF configures the management endpoints.
type BFF struct {
	// Prefix of the management endpoints. Default "/bff".
	Prefix string `yaml:"prefix"`
	// CSRFHeader is the anti-forgery header name. Default "X-CSRF".
	CSRFHeader string `yaml:"csrf_header"`
	// CSRFValue is its required value. Default "1".
	CSRFValue string `yaml:"csrf_value"`
	// BackchannelAllSessions ends all of the user's sessions on a
	// back-channel logout token that names a sid, not only that sid's.
	// Default false.
	BackchannelAllSessions bool `yaml:"backchannel_all_sessions"`
	// UserClaims, when set, limits the claims /bff/user returns to these
	// (the bff:* entries are always returned). Default: all ID token claims
	// except protocol ones (nonce, at_hash, c_hash).
	UserClaims []string `yaml:"user_claims"`
	// Diagnostics serves <prefix>/diagnostics to loopback callers: the
	// session's claims, token metadata (never a token), the route table and
	// the provider's discovery summary. Development only: it MUST NOT be on
	// in production. Default false.
	Diagnostics bool `yaml:"diagnostics"`
}

// Route is one API prefix proxied to an upstream.
type Route struct {
	// Prefix is the path prefix, starting and ending with "/".
	Prefix string `yaml:"prefix"`
	// Upstream is the absolute http(s) URL requests are forwarded to.
	Upstream string `yaml:"upstream"`
	// Token is what the upstream gets. Default TokenUser.
	Token TokenMode `yaml:"token"`
	// StripPrefix removes Prefix from the forwarded path.
	StripPrefix bool `yaml:"strip_prefix"`
	// Timeout bounds the upstream call. Default 30s; streaming responses
	// are not cut by it once headers arrived.
	Timeout time.Duration `yaml:"timeout"`
	// Methods limits the allowed methods. Default: all.
	Methods []string `yaml:"methods"`
	// Audience and Resource (RFC 8707) ask for a token for this API.
	Audience string `yaml:"audience"`
	Resource string `yaml:"resource"`
	// TokenExchange exchanges the user's token for one for this route
	// (RFC 8693).
	TokenExchange bool `yaml:"token_exchange"`
	// Require lists conditions every request must meet before it is
	// forwarded. Default: none, any signed-in user passes.
	Require Require `yaml:"require"`
	// Identity tells the upstream who the user is, beyond the token.
	Identity Identity `yaml:"identity"`
	// ForwardCookies names the browser cookies the upstream may see.
	// Default: none, no Cookie header reaches the upstream. Gatehouse's own
	// cookies never pass, listed or not.
	ForwardCookies []string `yaml:"forward_cookies"`
}

// Require is a route's authorization policy: every condition set must
// hold. Claims and Scopes failing answer 403 {"error":"forbidden"}; ACR
// and MaxAge failing answer 401 {"error":"step_up_required"} so that the
// browser logs in again with a stronger or fresher authentication.
type Require struct {
	// Claims maps a claim name of the session (ID token claims, merged with
	// UserInfo when enabled) to the values it may have: the claim equals
	// one of them or, for an array claim, contains one. A scalar is a list
	// of one. A missing claim never matches.
	Claims map[string][]string `yaml:"claims"`
	// Scopes must all have been granted to the access token (the token
	// response's scope, RFC 6749 §5.1).
	Scopes []string `yaml:"scopes"`
	// ACR lists the authentication context classes accepted: the session's
	// acr must be one of them (OpenID Connect Core §2).
	ACR []string `yaml:"acr"`
	// MaxAge is how long ago the user may have last authenticated (the ID
	// token's auth_time, OpenID Connect Core §3.1.2.1).
	MaxAge time.Duration `yaml:"max_age"`
}

// Identity is the identity Gatehouse gives a route's upstream API, beyond
// the token.
type Identity struct {
	// Headers maps a request header name to the session claim it carries,
	// such as {X-User-Id: sub}. Every inbound copy of these headers (any
	// case, "_" or "-") is removed first. A missing claim sends no header;
	// an array claim is sent as its values joined by ", ".
	Headers map[string]string `yaml:"headers"`
	// Assertion sends X-Gatehouse-Assertion: a JWT (ES256, at most 60s
	// valid) signed by Gatehouse whose aud is the route's audience, or its
	// upstream origin; APIs verify it against <bff.prefix>/jwks.json. The
	// keys: identity.signing_key_file at the top level.
	Assertion bool `yaml:"assertion"`
}

// DPoPMode says whether access tokens are sender-constrained.
type DPoPMode string

// The DPoP modes.
const (
	DPoPAuto DPoPMode = "auto"
	DPoPOff  DPoPMode = "off"
)

// StoreKind names a session store backend.
type StoreKind string

// The session stores.
const (
	// StoreMemory keeps sessions in this process: they end with it.
	StoreMemory StoreKind = "memory"
	// StoreBolt keeps sessions in a local bbolt file (one process).
	StoreBolt StoreKind = "bolt"
	// StoreRedis shares sessions between replicas through Redis.
	StoreRedis StoreKind = "redis"
	// StorePostgres shares sessions between replicas through PostgreSQL.
	StorePostgres StoreKind = "postgres"
)

// RevokesOnLogout reports whether logout revokes the refresh token:
// RevokeOnLogout, true when unset.
func (o OIDC) RevokesOnLogout() bool { return o.RevokeOnLogout == nil || *o.RevokeOnLogout }

// TokenMode says which access token a route sends upstream.
type TokenMode string

// The token modes.
const (
	// TokenUser sends the signed-in user's access token; anonymous calls
	// get 401.
	TokenUser TokenMode = "user"
	// TokenClient sends a client-credentials token of Gatehouse itself.
	TokenClient TokenMode = "client"
	// TokenUserOrClient sends the user's token when signed in, else a
	// client token.
	TokenUserOrClient TokenMode = "user_or_client"
	// TokenOptionalUser sends the user's token when signed in, else none.
	TokenOptionalUser TokenMode = "optional_user"
	// TokenNone never sends a token.
	TokenNone TokenMode = "none"
)

// Frontend says where the SPA itself comes from: exactly one of Upstream or
// StaticDir, or neither when Gatehouse serves only the API.
type Frontend struct {
	// Upstream is a server to proxy the SPA from (a dev server, say).
	Upstream string `yaml:"upstream"`
	// StaticDir serves the built SPA from disk with index.html fallback.
	StaticDir string `yaml:"static_dir"`
	// Headers are added to frontend responses (e.g. Content-Security-Policy).
	Headers map[string]string `yaml:"headers"`
}

// Redis configures the Redis client of store: redis beyond redis_url: a
// Sentinel or Cluster deployment, credentials and TLS.
type Redis struct {
	// Addrs are host:port addresses: one for a single node, the Sentinels
	// with MasterName, or Cluster nodes.
	Addrs []string `yaml:"addrs"`
	// MasterName selects Sentinel mode.
	MasterName string `yaml:"master_name"`
	// Cluster selects Cluster mode.
	Cluster  bool   `yaml:"cluster"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// PasswordFile names a file holding the password.
	PasswordFile string `yaml:"password_file"`
	DB           int    `yaml:"db"`
	// TLS turns on TLS with the system roots.
	TLS bool `yaml:"tls"`
	// KeyPrefix namespaces Gatehouse's keys; keep a {hash tag} for
	// Cluster. Default "{gatehouse}:".
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout bounds every Redis call. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize is the connection pool size. Default 10 per CPU.
	PoolSize int `yaml:"pool_size"`
	// LocalCacheTTL keeps session records read from Redis in process for up
	// to this long, so that most API calls need no Redis round trip. Every
	// change and logout on any replica evicts them through Redis pub/sub,
	// and the cache is off whenever that subscription is down; but eviction
	// on the other replicas is asynchronous, so a request reaching another
	// replica in the moment (typically well under a millisecond) after a
	// logout may still pass. Default 0: off, every read goes to Redis and a
	// logout is effective everywhere at once.
	LocalCacheTTL time.Duration `yaml:"local_cache_ttl"`
}

// Postgres configures the database of store: postgres.
type Postgres struct {
	// DSN is the libpq connection string: a URL such as
	// postgres://gatehouse:password@db:5432/gatehouse?sslmode=verify-full
	// or key=value pairs. search_path picks the schema of the tables;
	// pool_max_conns the pool size (default at least 10).
	DSN string `yaml:"dsn"`
	// DSNFile names a file holding the DSN, so that its password stays out
	// of the configuration.
	DSNFile string `yaml:"dsn_file"`
}

// Admin configures the operator listener.
type Admin struct {
	// Listen is the admin listener's address. Default "127.0.0.1:9090";
	// "" after defaults never happens: set "off" to disable it.
	Listen string `yaml:"listen"`
	// Token is the bearer credential the admin API requires. Required when
	// Listen is not a loopback address.
	Token string `yaml:"token"`
	// TokenFile names a file holding the token.
	TokenFile string `yaml:"token_file"`
}

// Tracing configures OpenTelemetry tracing. Off unless an endpoint is set.
type Tracing struct {
	// OTLPEndpoint is the OTLP/HTTP collector, such as
	// http://127.0.0.1:4318. Empty turns tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// ServiceName names the service in traces. Default "gatehouse".
	ServiceName string `yaml:"service_name"`
	// SampleRatio is the share of traces sampled (0..1). Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// Log configures logging.
type Log struct {
	// Format is "text" (default) or "json".
	Format string `yaml:"format"`
	// Level is "debug", "info" (default), "warn" or "error".
	Level string `yaml:"level"`
}
