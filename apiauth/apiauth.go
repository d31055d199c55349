package apiauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
)

// Config configures a [Verifier]. Audience and at least one of Issuer and
// Gateway are required; the zero value of every other field is a safe
// default.
type Config struct {
	// Issuer is the OpenID provider whose JWT access tokens (RFC 9068) the
	// API accepts, exactly as in their `iss`, for example
	// https://login.example.com. Its keys are found through discovery
	// (Issuer + "/.well-known/openid-configuration", then jwks_uri). Empty
	// means access tokens are not accepted.
	Issuer string
	// Audience is the API's identifier, which tokens and assertions must
	// list in `aud` (RFC 9068 §4): the resource indicator (RFC 8707) or
	// audience the gateway route asks tokens for, and the route's
	// `audience` for assertions (without one, the upstream origin).
	Audience string
	// Gateway is the origin of the Gatehouse app whose
	// X-Gatehouse-Assertion the API accepts, exactly as in the assertions'
	// `iss`, for example https://app.example.com. Empty means assertions
	// are not accepted.
	Gateway string
	// GatewayJWKS is the URL of the gateway's assertion keys; empty means
	// Gateway + "/bff/jwks.json". Set it when bff.prefix is not /bff or
	// the API reaches the gateway at another address.
	GatewayJWKS string
	// PublicURL is the API's base URL as its clients call it (scheme, host
	// and any path prefix a proxy strips), which the `htu` of a DPoP proof
	// must match with the request path appended (RFC 9449 §4.3). Behind
	// Gatehouse it is the route's upstream, e.g. http://orders:8080. Empty
	// means the request's own scheme and Host header, which the client
	// chooses: set it in production.
	PublicURL string
	// SkipTypCheck also accepts access tokens whose `typ` is "JWT" or
	// absent. RFC 9068 §4 requires at+jwt, which keeps other JWTs from
	// the same issuer (ID tokens, logout tokens) from passing as access
	// tokens; any other typ is still refused. It MUST NOT be set in
	// production unless the provider cannot issue at+jwt tokens (Keycloak,
	// Entra ID, zitadel), and then Audience MUST NOT be a client id that
	// the provider's ID tokens are issued to.
	SkipTypCheck bool
	// HTTPClient fetches discovery documents and key sets; nil means a
	// client with a 10 second timeout.
	HTTPClient *http.Client
	// Logger receives why requests were refused (never a token); nil
	// discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Once records the id of an accepted DPoP proof for ttl and reports
	// whether it was new; false is a replay (RFC 9449 §11.1). An API with
	// several replicas needs one shared across them: the Once method of a
	// Gatehouse store.Store (redisstore, pgstore) fits. Nil means a
	// bounded in-memory cache for this process.
	Once func(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Verifier authenticates requests to an API. It is safe for concurrent use.
type Verifier struct {
	tokens   *source // nil: access tokens not accepted
	gateway  *source // nil: assertions not accepted
	audience string
	public   *url.URL
	skipTyp  bool
	now      func() time.Time
	once     func(ctx context.Context, key string, ttl time.Duration) (bool, error)
	log      *slog.Logger
}

// source is one trusted signer: its issuer and its keys.
type source struct {
	issuer string
	keys   *keySet
}

// assertionHeader carries the gateway's signed identity assertion.
const assertionHeader = "X-Gatehouse-Assertion"

const (
	// tokenLeeway is the clock skew allowed on an access token's exp, nbf
	// and iat.
	tokenLeeway = 30 * time.Second
	// assertionLeeway is the skew allowed on an assertion's iat and nbf;
	// its exp is strict.
	assertionLeeway = 5 * time.Second
	// assertionMaxLifetime bounds exp - iat of an assertion.
	assertionMaxLifetime = 60 * time.Second
	// proofWindow is how far a DPoP proof's iat may be from now, either
	// way (RFC 9449 §4.3 item 11); proof ids are kept twice as long.
	proofWindow = 60 * time.Second
)

// tokenAlgs are the signature algorithms accepted on access tokens and
// assertions: asymmetric only, never `none` or a MAC (RFC 9068 §4, RFC
// 8725 §3.1).
var tokenAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// New returns a Verifier for cfg. It does no I/O: the provider's discovery
// document and key sets are fetched when the first request needs them.
func New(cfg Config) (*Verifier, error) {
	var errs []error
	if cfg.Audience == "" {
		errs = append(errs, errors.New("apiauth: Audience is required"))
	}
	if cfg.Issuer == "" && cfg.Gateway == "" {
		errs = append(errs, errors.New("apiauth: Issuer or Gateway is required"))
	}
	check := func(name, raw string) *url.URL {
		if raw == "" {
			return nil
		}
		u, err := absoluteURL(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("apiauth: %s: %w", name, err))
		}
		return u
	}
	check("Issuer", cfg.Issuer)
	if u := check("Gateway", cfg.Gateway); u != nil && u.Path != "" {
		errs = append(errs, fmt.Errorf("apiauth: Gateway %q must be an origin (scheme://host[:port]), as in the assertions' iss", cfg.Gateway))
	}
	if cfg.GatewayJWKS != "" && cfg.Gateway == "" {
		errs = append(errs, errors.New("apiauth: GatewayJWKS needs Gateway"))
	}
	check("GatewayJWKS", cfg.GatewayJWKS)
	public := check("PublicURL", cfg.PublicURL)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	v := &Verifier{
		audience: cfg.Audience,
		public:   public,
		skipTyp:  cfg.SkipTypCheck,
		now:      cfg.Now,
		once:     cfg.Once,
		log:      cfg.Logger,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.once == nil {
		v.once = newReplayCache(v.now, replayCapacity).Once
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	if cfg.Issuer != "" {
		v.tokens = &source{issuer: cfg.Issuer, keys: newKeySet(cfg.Issuer, "", client, v.now)}
	}
	if cfg.Gateway != "" {
		jwks := cfg.GatewayJWKS
		if jwks == "" {
			jwks = cfg.Gateway + "/bff/jwks.json"
		}
		v.gateway = &source{issuer: cfg.Gateway, keys: newKeySet("", jwks, client, v.now)}
	}
	return v, nil
}

// absoluteURL accepts https URLs, and http ones for loopback hosts only,
// without query or fragment.
func absoluteURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("%q: plain http is accepted for loopback hosts only", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, fmt.Errorf("%q has a query, fragment or user info", raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Claims are the verified claims of an access token or assertion, as
// decoded from JSON: strings, bools, json.Number, []any and map[string]any.
type Claims map[string]any

// Subject returns the `sub` claim.
func (c Claims) Subject() string {
	s, _ := c["sub"].(string)
	return s
}

// verified is what a successful check leaves in the request context.
type verified struct {
	claims Claims
	scheme string // the scheme for later challenges (RequireScope)
}

type contextKey struct{}

// FromContext returns the claims [Verifier.Handler] verified for the
// request whose context is ctx.
func FromContext(ctx context.Context) (Claims, bool) {
	v, ok := ctx.Value(contextKey{}).(*verified)
	if !ok {
		return nil, false
	}
	return v.claims, true
}

// Handler calls next only for requests [Verifier.Check] accepts, with the
// verified claims in the request context ([FromContext]); it answers the
// others with [WriteError].
func (v *Verifier) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := v.check(r)
		if err != nil {
			WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), contextKey{}, res)))
	})
}

// Check authenticates r and returns its verified claims, or an *[Error].
//
// With Issuer set, an Authorization header decides: `Bearer <token>` for
// an unbound JWT access token, `DPoP <token>` with a DPoP proof header for
// one bound to a key with `cnf.jkt` (RFC 9449 §7). Otherwise, with Gateway
// set, the X-Gatehouse-Assertion header does. A request with neither is
// refused with Code "".
func (v *Verifier) Check(r *http.Request) (Claims, error) {
	res, err := v.check(r)
	if err != nil {
		return nil, err
	}
	return res.claims, nil
}

func (v *Verifier) check(r *http.Request) (*verified, error) {
	res, e := v.authenticate(r)
	if e != nil {
		level := slog.LevelInfo
		if e.Code == "" {
			level = slog.LevelDebug
		}
		attrs := []slog.Attr{slog.String("error", e.Error()), slog.String("method", r.Method), slog.String("path", r.URL.Path)}
		if e.detail != nil {
			attrs = append(attrs, slog.String("reason", e.detail.Error()))
		}
		v.log.LogAttrs(r.Context(), level, "apiauth: request refused", attrs...)
		return nil, e
	}
	return res, nil
}

func (v *Verifier) authenticate(r *http.Request) (*verified, *Error) {
	if authz := r.Header.Values("Authorization"); v.tokens != nil && len(authz) > 0 {
		if len(authz) > 1 {
			return nil, refusal(http.StatusBadRequest, "invalid_request", schemeBearer, errors.New("several Authorization headers"))
		}
		scheme, token, _ := strings.Cut(authz[0], " ")
		switch {
		case strings.EqualFold(scheme, schemeBearer):
			return v.checkToken(r, token, schemeBearer)
		case strings.EqualFold(scheme, schemeDPoP):
			return v.checkToken(r, token, schemeDPoP)
		}
		// Another scheme is not ours to judge: on to the assertion.
	}
	if v.gateway != nil {
		switch vals := r.Header.Values(assertionHeader); len(vals) {
		case 0:
		case 1:
			return v.checkAssertion(r, vals[0])
		default:
			return nil, refusal(http.StatusBadRequest, "invalid_request", schemeBearer, errors.New("several assertion headers"))
		}
	}
	return nil, &Error{Status: http.StatusUnauthorized, offer: v.tokens != nil}
}

// checkToken verifies an access token presented with scheme (RFC 9068 §4)
// and, for DPoP, its proof (RFC 9449 §4.3, §7.1).
func (v *Verifier) checkToken(r *http.Request, token, scheme string) (*verified, *Error) {
	if token == "" || strings.ContainsAny(token, " \t") {
		return nil, refusal(http.StatusBadRequest, "invalid_request", scheme, errors.New("malformed Authorization header"))
	}
	now := v.now()
	claims, std, err := v.tokens.verify(r.Context(), token, v.checkTyp)
	if err == nil {
		err = validate(std, v.tokens.issuer, v.audience, now, tokenLeeway)
	}
	if err != nil {
		return nil, tokenError(err, scheme)
	}
	jkt, bound, err := confirmation(claims)
	switch {
	case err != nil:
		return nil, refusal(http.StatusUnauthorized, "invalid_token", scheme, err)
	case bound && scheme != schemeDPoP:
		// RFC 9449 §7.2: a bound token presented as a bearer token.
		return nil, refusal(http.StatusUnauthorized, "invalid_token", scheme, errors.New("sender-constrained token presented as Bearer"))
	case !bound && scheme == schemeDPoP:
		return nil, refusal(http.StatusUnauthorized, "invalid_token", scheme, errors.New("DPoP scheme with a token not bound to a key"))
	case bound:
		if e := v.checkProof(r, token, jkt, now); e != nil {
			return nil, e
		}
	}
	return &verified{claims: claims, scheme: scheme}, nil
}

// checkTyp applies RFC 9068 §4: typ must be at+jwt (media type rules:
// case-insensitive, optional "application/" prefix, RFC 7515 §4.1.9).
func (v *Verifier) checkTyp(typ string) error {
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	if t == "at+jwt" || (v.skipTyp && (typ == "" || t == "jwt")) {
		return nil
	}
	return fmt.Errorf("typ %q is not at+jwt", typ)
}

// confirmation reads `cnf` (RFC 7800): jkt for a DPoP-bound token (RFC
// 9449 §6.1). A confirmation apiauth cannot check (an mTLS x5t#S256) is an
// error: the token must not be accepted as if it were unbound.
func confirmation(c Claims) (jkt string, bound bool, err error) {
	raw, ok := c["cnf"]
	if !ok {
		return "", false, nil
	}
	cnf, ok := raw.(map[string]any)
	if !ok {
		return "", false, errors.New("cnf is not an object")
	}
	jkt, ok = cnf["jkt"].(string)
	if !ok || jkt == "" {
		return "", false, errors.New("cnf without a jkt this API can check")
	}
	return jkt, true, nil
}

// checkProof checks the DPoP proof of a request with a token bound to jkt
// (RFC 9449 §4.3, §7.1), and records its jti against replay.
func (v *Verifier) checkProof(r *http.Request, token, jkt string, now time.Time) *Error {
	bad := func(err error) *Error {
		return refusal(http.StatusUnauthorized, "invalid_dpop_proof", schemeDPoP, err)
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return bad(fmt.Errorf("%d DPoP headers", len(proofs)))
	}
	p, err := dpop.VerifyProof(proofs[0], r.Method, v.requestURL(r), token, now, proofWindow)
	if err != nil {
		return bad(err)
	}
	if subtle.ConstantTimeCompare([]byte(p.JKT), []byte(jkt)) != 1 {
		return bad(errors.New("proof key is not the key the token is bound to"))
	}
	sum := sha256.Sum256([]byte(jkt + " " + p.JTI))
	first, err := v.once(r.Context(), "apiauth-dpop:"+hex.EncodeToString(sum[:]), 2*proofWindow)
	switch {
	case err != nil:
		return refusal(http.StatusServiceUnavailable, "temporarily_unavailable", schemeDPoP, err)
	case !first:
		return bad(errors.New("proof jti replayed"))
	}
	return nil
}

// requestURL is the URL the client addressed, for `htu`.
func (v *Verifier) requestURL(r *http.Request) string {
	if v.public != nil {
		return v.public.Scheme + "://" + v.public.Host + strings.TrimSuffix(v.public.EscapedPath(), "/") + r.URL.EscapedPath()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// checkAssertion verifies the gateway's X-Gatehouse-Assertion: signed
// with a key from the gateway's JWKS, iss the gateway, aud the API, sub,
// jti, iat and exp present, exp no more than 60 s after iat and not past.
func (v *Verifier) checkAssertion(r *http.Request, raw string) (*verified, *Error) {
	now := v.now()
	claims, std, err := v.gateway.verify(r.Context(), raw, anyTyp)
	if err == nil {
		err = validate(std, v.gateway.issuer, v.audience, now, assertionLeeway)
	}
	if err == nil {
		err = assertionLifetime(std, now)
	}
	if err != nil {
		return nil, tokenError(err, schemeBearer)
	}
	return &verified{claims: claims, scheme: schemeBearer}, nil
}

// anyTyp: the gateway's key signs assertions only, so typ adds nothing.
func anyTyp(string) error { return nil }

func assertionLifetime(std *jwt.Claims, now time.Time) error {
	if std.ID == "" {
		return errors.New("assertion without jti")
	}
	exp, iat := std.Expiry.Time(), std.IssuedAt.Time()
	if exp.Sub(iat) > assertionMaxLifetime {
		return errors.New("assertion lifetime over 60 s")
	}
	if !now.Before(exp) {
		return jwt.ErrExpired
	}
	return nil
}

// tokenError maps a verification failure to the answer: 503 when keys
// could not be fetched, else invalid_token with nothing more said.
func tokenError(err error, scheme string) *Error {
	if errors.Is(err, errKeysUnavailable) {
		return refusal(http.StatusServiceUnavailable, "temporarily_unavailable", scheme, err)
	}
	return refusal(http.StatusUnauthorized, "invalid_token", scheme, err)
}

// verify parses a compact JWS signed with an allowed algorithm, checks its
// typ and signature, and decodes its claims, all of them and the
// registered ones.
func (s *source) verify(ctx context.Context, raw string, typ func(string) error) (Claims, *jwt.Claims, error) {
	jws, err := jose.ParseSignedCompact(raw, tokenAlgs)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed jws: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, errors.New("want exactly one signature")
	}
	t, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string)
	if err := typ(t); err != nil {
		return nil, nil, err
	}
	payload, err := s.keys.verify(ctx, jws)
	if err != nil {
		return nil, nil, err
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil || c == nil || dec.More() {
		return nil, nil, errors.New("claims are not one JSON object")
	}
	var std jwt.Claims
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, nil, fmt.Errorf("registered claims: %w", err)
	}
	return c, &std, nil
}

// validate applies the registered-claim checks shared by access tokens
// (RFC 9068 §4) and assertions, with go-jose's validation: iss exactly,
// aud containing audience, exp, nbf and iat within leeway; exp, iat and
// sub must be present (RFC 9068 §2.2).
func validate(std *jwt.Claims, issuer, audience string, now time.Time, leeway time.Duration) error {
	if std.Expiry == nil || std.IssuedAt == nil || std.Subject == "" {
		return errors.New("exp, iat or sub missing")
	}
	return std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: now}, leeway)
}
