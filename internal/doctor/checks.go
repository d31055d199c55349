package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/go-jose/go-jose/v4"
)

// pkce: RFC 9700 §2.1.1, RFC 7636; detect support from
// code_challenge_methods_supported (RFC 8414 §2).
func (d *doctor) pkce(m provider.Metadata) {
	switch {
	case slices.Contains(m.CodeChallengeMethodsSupported, "S256"):
		d.add(Pass, "pkce", "the provider advertises PKCE with S256 (RFC 7636), which Gatehouse sends on every login", "")
	case len(m.CodeChallengeMethodsSupported) == 0:
		d.add(Warn, "pkce",
			"the provider does not list code_challenge_methods_supported: Gatehouse sends an S256 code challenge anyway, but cannot tell whether the provider checks it, so a stolen authorization code may be redeemable (RFC 9700 §2.1.1)",
			"enable PKCE (S256) at the provider, ideally required for this client, and have it advertised in discovery")
	default:
		d.addf(Fail, "pkce",
			"enable the S256 code challenge method at the provider; plain is not acceptable (RFC 7636 §4.2, RFC 9700 §2.1.1)",
			"the provider lists code challenge methods %s but not S256: it will reject or ignore the S256 challenge Gatehouse sends",
			strings.Join(m.CodeChallengeMethodsSupported, ", "))
	}
}

// prompt: /bff/login always forwards the OpenID Connect Core 1.0 §3.1.2.1
// values (none, login, consent, select_account); other values, such as
// create (Initiating User Registration via OpenID Connect 1.0), only when
// the provider lists them in prompt_values_supported.
func (d *doctor) prompt(m provider.Metadata) {
	var extra []string
	for _, v := range m.PromptValuesSupported {
		if !slices.Contains([]string{"none", "login", "consent", "select_account"}, v) {
			extra = append(extra, v)
		}
	}
	if len(extra) == 0 {
		d.add(Pass, "prompt",
			"/bff/login forwards the OpenID Connect Core prompt values none, login, consent and select_account (silent login with prompt=none included); the provider lists no other values, so any other prompt gets 400", "")
		return
	}
	d.addf(Pass, "prompt", "", "/bff/login forwards the OpenID Connect Core prompt values none, login, consent and select_account, and %s as the provider lists; others get 400", strings.Join(extra, ", "))
}

// issParam: RFC 9207 mix-up defense (RFC 9700 §4.4.2).
func (d *doctor) issParam(m provider.Metadata) {
	if m.IssParameterSupported {
		d.add(Pass, "iss_parameter", "the provider sends the RFC 9207 iss parameter in authorization responses; Gatehouse checks it against the issuer (mix-up defense)", "")
		return
	}
	d.add(Warn, "iss_parameter",
		"the provider does not advertise authorization_response_iss_parameter_supported (RFC 9207): the mix-up defense relies on the iss claim of the ID token alone",
		"turn on the RFC 9207 iss response parameter at the provider if it offers it; otherwise nothing to change in Gatehouse")
}

// backchannel: OpenID Connect Back-Channel Logout 1.0 §2.1.
func (d *doctor) backchannel(m provider.Metadata) {
	uri := strings.TrimSuffix(d.cfg.Server.PublicURL, "/") + d.cfg.BFF.Prefix + "/backchannel"
	switch {
	case !m.BackchannelLogoutSupported:
		d.add(Warn, "backchannel_logout",
			"the provider does not advertise backchannel_logout_supported: signing out at the provider (or elsewhere) leaves Gatehouse sessions alive until they time out",
			"enable back-channel logout at the provider if it offers it and register "+uri+" as this client's backchannel_logout_uri; keep session.idle_timeout short otherwise")
	case !m.BackchannelLogoutSessionSupported:
		d.add(Warn, "backchannel_logout",
			"the provider supports back-channel logout but not backchannel_logout_session_supported: logout tokens carry no sid, so one logout ends every Gatehouse session of that user",
			"register "+uri+" as the backchannel_logout_uri; enable sid in logout tokens at the provider if it offers it")
	default:
		d.addf(Pass, "backchannel_logout", "",
			"the provider supports back-channel logout with sid; register %s as this client's backchannel_logout_uri", uri)
	}
}

// frontchannel: OpenID Connect Front-Channel Logout 1.0 §3 (discovery)
// and §2 (registration). Gatehouse ends sessions by iss and sid, so it
// needs frontchannel_logout_session_required.
func (d *doctor) frontchannel(m provider.Metadata) {
	uri := strings.TrimSuffix(d.cfg.Server.PublicURL, "/") + d.cfg.BFF.Prefix + "/frontchannel"
	switch {
	case !m.FrontchannelLogoutSupported:
		d.add(Info, "frontchannel_logout",
			"the provider does not advertise frontchannel_logout_supported: it cannot end Gatehouse sessions from its logout page's iframes",
			"nothing to change; back-channel logout is the stronger way to hear of logouts at the provider")
	case !m.FrontchannelLogoutSessionSupported:
		d.add(Warn, "frontchannel_logout",
			"the provider supports front-channel logout but not frontchannel_logout_session_supported: without iss and sid in the iframe URL, Gatehouse ends nothing",
			"use back-channel logout instead, or enable iss and sid for front-channel logout at the provider and register "+uri)
	default:
		d.addf(Pass, "frontchannel_logout", "",
			"the provider supports front-channel logout with iss and sid; register %s as this client's frontchannel_logout_uri with frontchannel_logout_session_required: true", uri)
	}
}

// revocation: RFC 7009; Duende-compatible logout revokes the refresh token.
func (d *doctor) revocation(m provider.Metadata) {
	revoke := d.cfg.OIDC.RevokesOnLogout()
	switch {
	case m.RevocationEndpoint != "":
		d.addf(Pass, "revocation", "", "the provider has a revocation endpoint (RFC 7009); revoke_on_logout is %t", revoke)
	case revoke:
		d.add(Warn, "revocation",
			"oidc.revoke_on_logout is on but the provider advertises no revocation_endpoint: refresh tokens stay valid at the provider after logout until they expire",
			"enable token revocation at the provider, or set oidc.revoke_on_logout: false to acknowledge it; keep refresh token lifetimes short")
	default:
		d.add(Pass, "revocation", "the provider has no revocation endpoint and oidc.revoke_on_logout is off", "")
	}
}

// endSession: OpenID Connect RP-Initiated Logout 1.0 §2.
func (d *doctor) endSession(m provider.Metadata) {
	if m.EndSessionEndpoint != "" {
		d.add(Pass, "end_session", "the provider has an end_session_endpoint: logout also ends the provider session (RP-Initiated Logout)", "")
		return
	}
	d.add(Warn, "end_session",
		"the provider advertises no end_session_endpoint: /bff/logout ends the Gatehouse session only, and the next login may sign the user in again silently",
		"enable RP-Initiated Logout at the provider if it offers it; otherwise tell users that signing out of the provider is separate")
}

// dpop: sender-constrained access tokens (RFC 9449, RFC 9700 §2.2.1).
func (d *doctor) dpop(m provider.Metadata) {
	supported := slices.Contains(m.DPoPSigningAlgValuesSupported, "ES256")
	switch {
	case supported && d.cfg.OIDC.DPoP != config.DPoPOff:
		d.add(Pass, "dpop", "the provider offers DPoP with ES256: access tokens are bound to a per-session key and useless if stolen from an API or a log", "")
	case supported:
		d.add(Warn, "dpop", "the provider offers DPoP but oidc.dpop is off: access tokens are bearer tokens",
			"set oidc.dpop: auto (the default) unless an API cannot verify DPoP proofs")
	default:
		d.add(Info, "dpop", "the provider does not offer DPoP with ES256: access tokens are bearer tokens (RFC 9700 §2.2.1 recommends sender-constraining them)",
			"enable DPoP at the provider if it supports it; Gatehouse uses it automatically")
	}
}

// refresh: refresh tokens keep sessions alive past the access token's
// lifetime (RFC 6749 §6; OpenID Connect Core §11 offline_access).
func (d *doctor) refresh(m provider.Metadata) {
	scopes := d.cfg.OIDC.Scopes
	switch {
	case !slices.Contains(scopes, "offline_access"):
		d.add(Warn, "refresh_tokens",
			"oidc.scopes lacks offline_access: many providers then issue no refresh token, and sessions end when the first access token expires",
			"add offline_access to oidc.scopes, unless the provider issues refresh tokens without it")
	case len(m.ScopesSupported) > 0 && !slices.Contains(m.ScopesSupported, "offline_access"):
		d.add(Warn, "refresh_tokens",
			"Gatehouse requests offline_access but the provider's scopes_supported does not list it: the provider may refuse the scope or issue no refresh token",
			"enable offline_access (refresh tokens) for this client at the provider, or remove it from oidc.scopes if the provider issues refresh tokens otherwise")
	case len(m.GrantTypesSupported) > 0 && !slices.Contains(m.GrantTypesSupported, "refresh_token"):
		d.add(Warn, "refresh_tokens",
			"the provider's grant_types_supported does not list refresh_token: sessions end when the first access token expires",
			"enable the refresh_token grant for this client at the provider")
	default:
		d.add(Pass, "refresh_tokens", "refresh tokens are obtainable: offline_access is requested and the provider lists it and the refresh_token grant (where it lists them)", "")
	}
}

// authMethod: RFC 8414 token_endpoint_auth_methods_supported; absent means
// client_secret_basic (OpenID Connect Discovery 1.0 §3).
func (d *doctor) authMethod(m provider.Metadata) {
	method := d.cfg.OIDC.AuthMethod
	listed := m.TokenEndpointAuthMethodsSupported
	switch {
	case len(listed) == 0 && method == "client_secret_basic":
		d.add(Pass, "auth_method", "the provider lists no token endpoint auth methods, which means client_secret_basic, the configured oidc.auth_method", "")
	case len(listed) == 0:
		d.addf(Warn, "auth_method", "set oidc.auth_method: client_secret_basic unless the provider documents "+method,
			"the provider lists no token endpoint auth methods, which means client_secret_basic only, but oidc.auth_method is %s", method)
	case slices.Contains(listed, method):
		d.addf(Pass, "auth_method", "", "the provider accepts oidc.auth_method %s at the token endpoint", method)
	default:
		other := "client_secret_basic"
		if method == other {
			other = "client_secret_post"
		}
		fix := "configure the client at the provider for " + method
		if slices.Contains(listed, other) {
			fix = "set oidc.auth_method: " + other + " (and register the client for it)"
		}
		d.addf(Fail, "auth_method", fix,
			"oidc.auth_method is %s but the provider's token_endpoint_auth_methods_supported is %s: every code exchange will fail",
			method, strings.Join(listed, ", "))
	}
}

// signingAlgs: OpenID Connect Core §3.1.3.7 item 6/7; Gatehouse accepts
// asymmetric algorithms only (never none or HMAC).
func (d *doctor) signingAlgs(m provider.Metadata) {
	allowed := d.cfg.OIDC.SigningAlgs
	source := "oidc.signing_algs"
	if len(allowed) == 0 {
		allowed = config.AsymmetricAlgs()
		source = "Gatehouse's asymmetric algorithms"
	}
	advertised := m.IDTokenSigningAlgValuesSupported
	if len(advertised) == 0 {
		d.add(Warn, "signing_algs",
			"the provider does not list id_token_signing_alg_values_supported (a required discovery field): Gatehouse assumes RS256",
			"set oidc.signing_algs to the algorithm the provider signs ID tokens with")
		return
	}
	var both []string
	for _, a := range advertised {
		if slices.Contains(allowed, a) {
			both = append(both, a)
		}
	}
	if len(both) == 0 {
		d.addf(Fail, "signing_algs",
			"configure the provider to sign this client's ID tokens with an asymmetric algorithm such as RS256 or ES256, and set oidc.signing_algs to match (or leave it empty)",
			"the provider signs ID tokens with %s, none of which is in %s (%s): every login will fail; none and HMAC algorithms are never accepted",
			strings.Join(advertised, ", "), source, strings.Join(allowed, ", "))
		return
	}
	d.addf(Pass, "signing_algs", "", "ID tokens will be accepted signed with %s", strings.Join(both, ", "))
}

// maxJWKS bounds the key set document read.
const maxJWKS = 1 << 20

// jwks fetches the key set and checks it holds a public key for one of the
// accepted algorithms (OpenID Connect Core §10.1).
func (d *doctor) jwks(ctx context.Context, client *http.Client, m provider.Metadata, algs []string) {
	fix := "check the provider's jwks_uri and that this host can reach it"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.JWKSURI, nil)
	if err != nil {
		d.addf(Fail, "jwks", fix, "the provider's jwks_uri %q is not a usable URL: %v", m.JWKSURI, err)
		return
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		d.addf(Fail, "jwks", fix, "cannot fetch the provider's key set from %s: %v", m.JWKSURI, err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS))
	if err != nil || resp.StatusCode != http.StatusOK {
		d.addf(Fail, "jwks", fix, "cannot fetch the provider's key set from %s: status %d %v", m.JWKSURI, resp.StatusCode, err)
		return
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		d.addf(Fail, "jwks", fix, "the provider's key set at %s does not parse: %v", m.JWKSURI, err)
		return
	}
	usable := 0
	for _, k := range set.Keys {
		if k.IsPublic() && (k.Use == "" || k.Use == "sig") && slices.ContainsFunc(algs, func(a string) bool { return keyFits(k, a) }) {
			usable++
		}
	}
	if usable == 0 {
		d.addf(Fail, "jwks", "make sure the provider publishes its ID token signing key, for one of "+strings.Join(algs, ", "),
			"the provider's key set at %s has %d keys, none a public signing key for %s: no ID token can be verified",
			m.JWKSURI, len(set.Keys), strings.Join(algs, ", "))
		return
	}
	d.addf(Pass, "jwks", "", "the provider's key set has %d usable signing key(s)", usable)
}

// keyFits reports whether k can verify signatures made with alg.
func keyFits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// sameSiteGuess reports whether two hosts look like the same site. Without
// the public suffix list it compares the last two labels, which is right
// for most deployments and wrong for hosts under suffixes such as co.uk;
// the check that uses it says so.
func sameSiteGuess(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == b {
		return true
	}
	tail := func(h string) string {
		parts := strings.Split(h, ".")
		if len(parts) <= 2 {
			return h
		}
		return strings.Join(parts[len(parts)-2:], ".")
	}
	return tail(a) == tail(b) && strings.Contains(a, ".") && !isIP(a)
}

func isIP(h string) bool {
	return strings.Trim(h, "[]") != h || strings.Count(h, ":") > 1 || strings.Trim(h, "0123456789.") == ""
}
