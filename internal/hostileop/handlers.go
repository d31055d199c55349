package hostileop

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
)

// grant is one authorization: the user, the client and everything issued
// from it. Revoking the grant kills every token of its family.
type grant struct {
	id       int
	clientID string
	sub      string
	claims   map[string]any
	sid      string
	nonce    string
	scope    string
	authTime time.Time
	// acr is the authentication context class the grant reports, "" for
	// none.
	acr     string
	revoked bool
}

type authCode struct {
	g           *grant
	redirectURI string
	challenge   string
	method      string
	expires     time.Time
	used        bool
}

type accessToken struct {
	g        *grant // nil for client_credentials
	clientID string
	expires  time.Time
	revoked  bool
	jkt      string // RFC 9449 §6: thumbprint of the key the token is bound to, "" for Bearer
}

type refreshToken struct {
	g       *grant
	rotated bool // replaced by a newer refresh token
	revoked bool
}

// newGrantLocked starts an authorization for the current user. Caller holds
// p.mu.
func (p *Provider) newGrantLocked(clientID, nonce, scope string) *grant {
	p.nextID++
	g := &grant{id: p.nextID, clientID: clientID, sub: p.sub, claims: maps.Clone(p.claims),
		nonce: nonce, scope: scope, authTime: p.now().Add(-p.authAge), acr: p.acr}
	if p.withSID {
		g.sid = randomString("sid-")[:24]
	}
	return g
}

type discoveryDoc struct {
	Issuer                             string   `json:"issuer"`
	AuthorizationEndpoint              string   `json:"authorization_endpoint"`
	TokenEndpoint                      string   `json:"token_endpoint"`
	JWKSURI                            string   `json:"jwks_uri"`
	UserinfoEndpoint                   string   `json:"userinfo_endpoint"`
	RevocationEndpoint                 string   `json:"revocation_endpoint,omitempty"`
	EndSessionEndpoint                 string   `json:"end_session_endpoint,omitempty"`
	ResponseTypesSupported             []string `json:"response_types_supported"`
	SubjectTypesSupported              []string `json:"subject_types_supported"`
	ScopesSupported                    []string `json:"scopes_supported"`
	GrantTypesSupported                []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported      []string `json:"code_challenge_methods_supported,omitempty"`
	PromptValuesSupported              []string `json:"prompt_values_supported,omitempty"`
	IssParameterSupported              bool     `json:"authorization_response_iss_parameter_supported"`
	BackchannelLogoutSupported         bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported  bool     `json:"backchannel_logout_session_supported"`
	FrontchannelLogoutSupported        bool     `json:"frontchannel_logout_supported"`
	FrontchannelLogoutSessionSupported bool     `json:"frontchannel_logout_session_supported"`
	IDTokenSigningAlgValuesSupported   []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported  []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods      []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	DPoPSigningAlgValuesSupported      []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// handleDiscovery serves OpenID Connect Discovery 1.0 §4.
func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.stats.Discovery++
	doc := discoveryDoc{
		Issuer:                             p.URL,
		AuthorizationEndpoint:              p.URL + "/authorize",
		TokenEndpoint:                      p.URL + "/token",
		JWKSURI:                            p.URL + "/jwks",
		UserinfoEndpoint:                   p.URL + "/userinfo",
		ResponseTypesSupported:             []string{"code"},
		SubjectTypesSupported:              []string{"public"},
		ScopesSupported:                    []string{"openid", "profile", "email", "offline_access"},
		GrantTypesSupported:                []string{"authorization_code", "refresh_token", "client_credentials"},
		CodeChallengeMethodsSupported:      slices.Clone(p.challenge),
		PromptValuesSupported:              slices.Clone(p.prompts),
		IssParameterSupported:              p.issParam == IssParamCorrect || p.issParam == IssParamWrong || p.issParam == IssParamMissing,
		BackchannelLogoutSupported:         true,
		BackchannelLogoutSessionSupported:  p.withSID,
		FrontchannelLogoutSupported:        true,
		FrontchannelLogoutSessionSupported: p.withSID,
		IDTokenSigningAlgValuesSupported:   []string{"RS256"},
		TokenEndpointAuthMethodsSupported:  []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
	}
	if p.discoveryIssuer != "" {
		doc.Issuer = p.discoveryIssuer
	}
	if p.revocation {
		doc.RevocationEndpoint = p.URL + "/revoke"
		doc.RevocationEndpointAuthMethods = doc.TokenEndpointAuthMethodsSupported
	}
	if p.endSession {
		doc.EndSessionEndpoint = p.URL + "/end_session"
	}
	if p.dpop {
		doc.DPoPSigningAlgValuesSupported = []string{"ES256"} // RFC 9449 §5.1
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, doc)
}

func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.stats.JWKSFetches++
	set := p.keys.jwks()
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// handleAuthorize answers at once, as if the user had signed in and
// consented (OIDC Core §3.1.2).
func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "hostileop: bad authorization request", http.StatusBadRequest)
		return
	}
	q := r.Form
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Authorize++
	p.lastAuthorize = cloneValues(q)

	// RFC 6749 §4.1.2.1: with an unknown client or an unregistered redirect
	// URI, never redirect.
	c, ok := p.clients[q.Get("client_id")]
	if !ok {
		http.Error(w, "hostileop: unknown client_id", http.StatusBadRequest)
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(c.RedirectURIs, redirectURI) {
		http.Error(w, "hostileop: redirect_uri not registered", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		p.redirectLocked(w, r, redirectURI, url.Values{"error": {code}, "error_description": {desc}}, q.Get("state"))
	}
	if p.authorizeError != "" {
		fail(p.authorizeError, "scripted error")
		return
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "only code is supported")
		return
	}
	if len(p.prompts) > 0 {
		for v := range strings.FieldsSeq(q.Get("prompt")) {
			if !slices.Contains(p.prompts, v) {
				fail("invalid_request", "unsupported prompt value")
				return
			}
		}
	}
	var challenge, method string
	if len(p.challenge) > 0 {
		challenge, method = q.Get("code_challenge"), q.Get("code_challenge_method")
		if method == "" {
			method = "plain" // RFC 7636 §4.3
		}
		if challenge == "" {
			fail("invalid_request", "code_challenge required") // RFC 7636 §4.4.1
			return
		}
		if !slices.Contains(p.challenge, method) {
			fail("invalid_request", "transform algorithm not supported")
			return
		}
	}
	g := p.newGrantLocked(c.ID, q.Get("nonce"), q.Get("scope"))
	// OpenID Connect Core §3.1.2.1: as if the user satisfied the first
	// requested class, unless SetACR scripts another answer.
	if requested := strings.Fields(q.Get("acr_values")); len(requested) > 0 && p.acr == "" {
		g.acr = requested[0]
	}
	p.lastSID = g.sid
	code := randomString("hostileop-code-")
	p.codes[code] = &authCode{g: g, redirectURI: redirectURI, challenge: challenge, method: method,
		expires: p.now().Add(CodeTTL)}
	p.redirectLocked(w, r, redirectURI, url.Values{"code": {code}}, q.Get("state"))
}

// redirectLocked sends an authorization response to redirectURI with
// params, state and the `iss` parameter per p.issParam (RFC 9207 §2, on
// success and error responses alike).
func (p *Provider) redirectLocked(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values, state string) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		http.Error(w, "hostileop: bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if state != "" {
		q.Set("state", state)
	}
	switch p.issParam {
	case IssParamCorrect, IssParamUnadvertised:
		q.Set("iss", p.URL)
	case IssParamWrong:
		q.Set("iss", OtherIssuer)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// tokenError is an RFC 6749 §5.2 error response.
type tokenError struct {
	status int
	code   string
	desc   string
}

func (e *tokenError) write(w http.ResponseWriter, basic bool) {
	if e.status == http.StatusUnauthorized && basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="hostileop"`)
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func errInvalidGrant(desc string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_grant", desc}
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// authenticateAssertion checks a private_key_jwt client assertion (RFC 7523
// §3, OpenID Connect Core §9): signed by the client's registered key, iss
// and sub the client, aud the token endpoint or the issuer, unexpired, and
// its jti never seen before.
func (p *Provider) authenticateAssertion(r *http.Request) (string, bool, *tokenError) {
	fail := &tokenError{http.StatusUnauthorized, "invalid_client", "client assertion rejected"}
	_, _, basic := r.BasicAuth()
	if basic || r.PostForm.Get("client_secret") != "" || r.PostForm.Get("client_assertion_type") != assertionType {
		return "", basic, &tokenError{http.StatusBadRequest, "invalid_request", "more than one client authentication method, or a wrong assertion type"}
	}
	jws, err := jose.ParseSignedCompact(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256})
	if err != nil {
		return "", false, fail
	}
	var claims struct {
		Iss, Sub, Jti string
		Aud           any
		Exp           int64
	}
	unverified := jws.UnsafePayloadWithoutVerification()
	if json.Unmarshal(unverified, &claims) != nil {
		return "", false, fail
	}
	c, ok := p.clients[claims.Iss]
	if !ok || c.Key == nil {
		return claims.Iss, false, fail
	}
	payload, err := jws.Verify(c.Key)
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		return claims.Iss, false, fail
	}
	audOK := false
	for _, a := range audiences(claims.Aud) {
		if a == p.URL+"/token" || a == p.URL || a == p.URL+"/revoke" {
			audOK = true
		}
	}
	if claims.Sub != claims.Iss || !audOK || claims.Jti == "" || p.assertionIDs[claims.Jti] || time.Unix(claims.Exp, 0).Before(p.now()) {
		return claims.Iss, false, fail
	}
	if pid := r.PostForm.Get("client_id"); pid != "" && pid != claims.Iss {
		return claims.Iss, false, fail
	}
	if p.assertionIDs == nil {
		p.assertionIDs = map[string]bool{}
	}
	p.assertionIDs[claims.Jti] = true
	p.stats.ClientAssertions++
	return claims.Iss, false, nil
}

func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// authenticateClient checks client_secret_basic or client_secret_post
// (RFC 6749 §2.3.1). It returns the client id presented (even when
// authentication fails), whether Basic was used, and an error if
// authentication failed. Caller holds p.mu.
func (p *Provider) authenticateClient(r *http.Request) (string, bool, *tokenError) {
	if r.PostForm.Get("client_assertion_type") != "" || r.PostForm.Get("client_assertion") != "" {
		return p.authenticateAssertion(r)
	}
	id, secret, basic := r.BasicAuth()
	postID, postSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if basic {
		if postSecret != "" {
			// RFC 6749 §2.3: one authentication method per request.
			return id, true, &tokenError{http.StatusBadRequest, "invalid_request", "more than one client authentication method"}
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return id, true, &tokenError{http.StatusUnauthorized, "invalid_client", "malformed basic credentials"}
		}
		if postID != "" && postID != id {
			return id, true, &tokenError{http.StatusBadRequest, "invalid_request", "client_id differs from basic credentials"}
		}
	} else {
		id, secret = postID, postSecret
	}
	c, ok := p.clients[id]
	if !ok || secret == "" || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return id, basic, &tokenError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}
	}
	return id, basic, nil
}

// handleToken serves the token endpoint (RFC 6749 §3.2).
func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	p.mu.Lock()
	p.lastTokenForm = cloneValues(r.PostForm)
	p.lastTokenHdr = r.Header.Clone()
	jkt, nonce, derr := p.dpopTokenLocked(r)
	if nonce != "" {
		p.mu.Unlock()
		w.Header().Set(dpop.NonceHeader, nonce)
		derr.write(w, false)
		return
	}
	grantType := r.PostForm.Get("grant_type")
	switch grantType {
	case "authorization_code":
		p.stats.CodeGrants++
	case "refresh_token":
		p.stats.RefreshGrants++
	case "client_credentials":
		p.stats.ClientCredentialsGrants++
	case grantTokenExchange:
		p.stats.TokenExchanges++
	}
	if derr != nil {
		p.stats.TokenErrors++
		if grantType == "refresh_token" {
			p.stats.RefreshFailures++
		}
		p.mu.Unlock()
		derr.write(w, false)
		return
	}
	hook, mode, delay := p.refreshHook, p.refreshMode, p.refreshDelay
	p.mu.Unlock()

	if grantType == "refresh_token" {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(p.ctx, cancel)
		defer stop()
		if hook != nil {
			hook(ctx)
		}
		if mode == RefreshSlow {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}

	p.mu.Lock()
	resp, basic, terr := p.tokenLocked(r, grantType, jkt)
	if terr != nil {
		p.stats.TokenErrors++
		if grantType == "refresh_token" {
			p.stats.RefreshFailures++
		}
	}
	p.mu.Unlock()
	if terr != nil {
		terr.write(w, basic)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) tokenLocked(r *http.Request, grantType, jkt string) (map[string]any, bool, *tokenError) {
	clientID, basic, terr := p.authenticateClient(r)
	if terr != nil {
		return nil, basic, terr
	}
	form := r.PostForm
	switch grantType {
	case "authorization_code":
		resp, terr := p.codeGrantLocked(clientID, form, jkt)
		return resp, basic, terr
	case "refresh_token":
		resp, terr := p.refreshGrantLocked(clientID, form, jkt)
		return resp, basic, terr
	case "client_credentials":
		at := p.issueAccessLocked(nil, clientID, jkt)
		return map[string]any{"access_token": at, "token_type": tokenType(jkt),
			"expires_in": int64(p.accessTTL / time.Second), "scope": form.Get("scope")}, basic, nil
	case grantTokenExchange:
		resp, terr := p.exchangeLocked(clientID, form, jkt)
		return resp, basic, terr
	default:
		return nil, basic, &tokenError{http.StatusBadRequest, "unsupported_grant_type", "grant type not supported"}
	}
}

const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// exchangeLocked answers an RFC 8693 token exchange: a live access token of
// this client as subject_token gets a new access token for the requested
// resource or audience, recorded in Stats.Exchanges.
func (p *Provider) exchangeLocked(clientID string, form url.Values, jkt string) (map[string]any, *tokenError) {
	subject := form.Get("subject_token")
	at, ok := p.access[subject]
	if form.Get("subject_token_type") != tokenTypeAccessToken || !ok || at.revoked || !p.now().Before(at.expires) || at.clientID != clientID {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", "subject_token is not a live access token of this client"}
	}
	issued := p.issueAccessLocked(at.g, clientID, jkt)
	p.exchanges = append(p.exchanges, ExchangeRequest{
		SubjectToken: subject, Resource: form.Get("resource"), Audience: form.Get("audience"), Issued: issued,
	})
	return map[string]any{"access_token": issued, "issued_token_type": tokenTypeAccessToken,
		"token_type": tokenType(jkt), "expires_in": int64(p.accessTTL / time.Second)}, nil
}

// codeGrantLocked redeems an authorization code (RFC 6749 §4.1.3,
// RFC 7636 §4.6).
func (p *Provider) codeGrantLocked(clientID string, form url.Values, jkt string) (map[string]any, *tokenError) {
	code, ok := p.codes[form.Get("code")]
	if !ok {
		return nil, errInvalidGrant("unknown code")
	}
	if code.g.clientID != clientID {
		return nil, errInvalidGrant("code issued to another client")
	}
	if code.used {
		// RFC 6749 §4.1.2: a replayed code revokes what it issued.
		p.stats.CodeReplays++
		code.g.revoked = true
		return nil, errInvalidGrant("code already used")
	}
	code.used = true
	if !p.now().Before(code.expires) {
		return nil, errInvalidGrant("code expired")
	}
	if form.Get("redirect_uri") != code.redirectURI {
		return nil, errInvalidGrant("redirect_uri differs from the authorization request")
	}
	if code.challenge != "" {
		verifier := form.Get("code_verifier")
		if len(verifier) < 43 || len(verifier) > 128 {
			return nil, errInvalidGrant("code_verifier missing or malformed")
		}
		derived := verifier
		if code.method == "S256" {
			derived = oauth2.S256ChallengeFromVerifier(verifier)
		}
		if subtle.ConstantTimeCompare([]byte(derived), []byte(code.challenge)) != 1 {
			return nil, errInvalidGrant("code_verifier does not match code_challenge")
		}
	}
	return p.tokenResponseLocked(code.g, true, true, jkt)
}

// refreshGrantLocked answers a refresh_token grant per p.refreshMode
// (RFC 6749 §6, RFC 9700 §4.14.2).
func (p *Provider) refreshGrantLocked(clientID string, form url.Values, jkt string) (map[string]any, *tokenError) {
	switch p.refreshMode {
	case RefreshInvalidGrant:
		return nil, errInvalidGrant("scripted refresh failure")
	case RefreshServerError:
		return nil, &tokenError{http.StatusInternalServerError, "server_error", "scripted server error"}
	}
	rt, ok := p.refresh[form.Get("refresh_token")]
	if !ok || rt.g.clientID != clientID || rt.revoked || rt.g.revoked {
		return nil, errInvalidGrant("refresh token invalid")
	}
	if rt.rotated {
		p.stats.RefreshReuses++
		rt.g.revoked = true
		return nil, errInvalidGrant("refresh token reused; family revoked")
	}
	rotate := p.refreshMode != RefreshNonRotating
	if rotate {
		rt.rotated = true
	}
	return p.tokenResponseLocked(rt.g, rotate, false, jkt)
}

// tokenResponseLocked issues an access token (bound to jkt unless it is
// empty) and, as asked, a refresh token and an ID token for g.
func (p *Provider) tokenResponseLocked(g *grant, withRefresh, fromCode bool, jkt string) (map[string]any, *tokenError) {
	resp := map[string]any{
		"access_token": p.issueAccessLocked(g, g.clientID, jkt),
		"token_type":   tokenType(jkt),
		"expires_in":   int64(p.accessTTL / time.Second),
	}
	if g.scope != "" {
		resp["scope"] = g.scope
	}
	if withRefresh && p.refreshTokens {
		rt := randomString("hostileop-rt-")
		p.refresh[rt] = &refreshToken{g: g}
		p.issued = append(p.issued, rt)
		resp["refresh_token"] = rt
	}
	if slices.Contains(strings.Fields(g.scope), "openid") && (fromCode || p.refreshIDToken) {
		// OIDC Core §12.2: a refreshed ID token SHOULD NOT carry a nonce.
		raw, err := p.issueIDToken(g, g.clientID, fromCode)
		if err != nil {
			p.tb.Errorf("hostileop: %v", err)
			return nil, &tokenError{http.StatusInternalServerError, "server_error", "cannot sign id token"}
		}
		resp["id_token"] = raw
	}
	return resp, nil
}

func (p *Provider) issueAccessLocked(g *grant, clientID, jkt string) string {
	at := randomString("hostileop-at-")
	p.access[at] = &accessToken{g: g, clientID: clientID, expires: p.now().Add(p.accessTTL), jkt: jkt}
	p.issued = append(p.issued, at)
	return at
}

// handleUserinfo serves OIDC Core §5.3 with Bearer tokens in the
// Authorization header only (RFC 6750 §2.1), and DPoP-bound tokens only
// with the DPoP scheme and a proof (RFC 9449 §7).
func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.stats.Userinfo++
	at, scheme := p.userinfoTokenLocked(r)
	if at == nil || at.revoked || at.g == nil || at.g.revoked || !p.now().Before(at.expires) {
		p.mu.Unlock()
		challenge := `Bearer error="invalid_token"`
		if scheme == "DPoP" {
			challenge = `DPoP error="invalid_token", algs="ES256"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	claims := maps.Clone(at.g.claims)
	if claims == nil {
		claims = map[string]any{}
	}
	claims["sub"] = at.g.sub
	if p.userinfoSub != "" {
		claims["sub"] = p.userinfoSub
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, claims)
}

// handleRevoke serves RFC 7009 §2.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.revocation {
		http.NotFound(w, r)
		return
	}
	clientID, basic, terr := p.authenticateClient(r)
	token := r.PostForm.Get("token")
	p.stats.Revocations = append(p.stats.Revocations, RevocationRequest{
		Token: token, TypeHint: r.PostForm.Get("token_type_hint"), ClientID: clientID, ClientAuthOK: terr == nil})
	if terr != nil {
		terr.write(w, basic)
		return
	}
	if token == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	// RFC 7009 §2.1: only the client a token was issued to may revoke it;
	// revoking a refresh token also revokes the access tokens of its grant.
	if rt, ok := p.refresh[token]; ok {
		if rt.g.clientID != clientID {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unauthorized_client"})
			return
		}
		rt.revoked = true
		rt.g.revoked = true
	}
	if at, ok := p.access[token]; ok {
		if at.clientID != clientID {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unauthorized_client"})
			return
		}
		at.revoked = true
	}
	// RFC 7009 §2.2: unknown tokens get 200 too.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// handleEndSession serves OpenID Connect RP-Initiated Logout 1.0 §2-§3.
func (p *Provider) handleEndSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "hostileop: bad end-session request", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.endSession {
		http.NotFound(w, r)
		return
	}
	q := r.Form
	hint := q.Get("id_token_hint")
	hintClient, known := p.idTokens[hint]
	p.stats.EndSessions = append(p.stats.EndSessions, EndSessionRequest{Params: cloneValues(q), IDTokenHintKnown: hint != "" && known})
	target := q.Get("post_logout_redirect_uri")
	frames := p.frontchannelFramesLocked(p.idTokenSIDs[hint])
	if target == "" {
		if len(frames) > 0 {
			writeLogoutPage(w, frames, "")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("signed out\n"))
		return
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		clientID = hintClient
	}
	if hint != "" && known && clientID != hintClient {
		http.Error(w, "hostileop: client_id does not match id_token_hint", http.StatusBadRequest)
		return
	}
	c, ok := p.clients[clientID]
	if !ok || !slices.Contains(c.PostLogoutRedirectURIs, target) {
		http.Error(w, "hostileop: post_logout_redirect_uri not registered", http.StatusBadRequest)
		return
	}
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, "hostileop: bad post_logout_redirect_uri", http.StatusBadRequest)
		return
	}
	if state := q.Get("state"); state != "" {
		uq := u.Query()
		uq.Set("state", state)
		u.RawQuery = uq.Encode()
	}
	if len(frames) > 0 {
		writeLogoutPage(w, frames, u.String())
		return
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// frontchannelFramesLocked returns the front-channel logout URLs of every
// client registered with one, each with iss and sid (Front-Channel Logout
// 1.0 §2, §4: the OP renders them for the RPs of the ended session).
func (p *Provider) frontchannelFramesLocked(sid string) []string {
	if sid == "" {
		return nil
	}
	var out []string
	for _, c := range p.clients {
		if c.FrontchannelLogoutURI == "" {
			continue
		}
		u, err := url.Parse(c.FrontchannelLogoutURI)
		if err != nil {
			continue
		}
		q := u.Query()
		q.Set("iss", p.URL)
		q.Set("sid", sid)
		u.RawQuery = q.Encode()
		out = append(out, u.String())
	}
	slices.Sort(out)
	return out
}

// logoutPage is the end_session page with the RPs' front-channel iframes
// and a link onwards.
var logoutPage = template.Must(template.New("logout").Parse(`<!doctype html>
<title>Signing out</title>
{{range .Frames}}<iframe src="{{.}}" width="0" height="0"></iframe>
{{end}}{{if .Next}}<a id="next" href="{{.Next}}">Continue</a>{{else}}<p>signed out</p>{{end}}
`))

func writeLogoutPage(w http.ResponseWriter, frames []string, next string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	logoutPage.Execute(w, struct {
		Frames []string
		Next   string
	}{frames, next})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "hostileop: encode response", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
