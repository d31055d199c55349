package hostileop

import (
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
)

// DPoPProofMaxAge is how far a DPoP proof's `iat` may be from the
// provider's clock (RFC 9449 §4.3 step 11, §11.1).
const DPoPProofMaxAge = time.Minute

// SetDPoP turns DPoP (RFC 9449) support on or off (default off). When on,
// discovery advertises dpop_signing_alg_values_supported ["ES256"] and a
// token request with a valid `DPoP` proof gets an access token of type DPoP
// bound to the proof key; a request without the header still gets a Bearer
// token. Tokens bound earlier stay bound when DPoP is turned off.
func (p *Provider) SetDPoP(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dpop = on
}

// SetDPoPNonce controls whether the token endpoint demands a server nonce
// in DPoP proofs (RFC 9449 §8). When required, a proof without the current
// nonce is answered 400 {"error":"use_dpop_nonce"} with a DPoP-Nonce
// header; such challenges are counted in Stats.DPoPNonceChallenges only,
// not as grants or token errors. Turning it on picks a fresh nonce.
func (p *Provider) SetDPoPNonce(required bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dpopNonceRequired = required
	if required {
		p.dpopNonce = randomString("dpop-nonce-")
	}
}

// RotateDPoPNonce replaces the current DPoP nonce, so that the next proof
// carrying the old one is challenged again.
func (p *Provider) RotateDPoPNonce() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dpopNonce = randomString("dpop-nonce-")
}

// DPoPBinding returns the JWK thumbprint an access token is bound to, and
// whether it is a DPoP-bound token this provider issued.
func (p *Provider) DPoPBinding(accessToken string) (jkt string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, found := p.access[accessToken]
	if !found || at.jkt == "" {
		return "", false
	}
	return at.jkt, true
}

// checkProofLocked verifies a DPoP proof for a request to the endpoint at
// path, with the access token it accompanies ("" at the token endpoint),
// and rejects replayed jti values (RFC 9449 §11.1). It does not record the
// jti; acceptProofLocked does. Caller holds p.mu.
func (p *Provider) checkProofLocked(r *http.Request, path, accessToken string) (*dpop.Claims, bool) {
	// RFC 9449 §4.3 step 1: exactly one DPoP header.
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return nil, false
	}
	c, err := dpop.VerifyProof(proofs[0], r.Method, p.URL+path, accessToken, p.now(), DPoPProofMaxAge)
	if err != nil || p.dpopJTIs[c.JTI] {
		return nil, false
	}
	return c, true
}

func (p *Provider) acceptProofLocked(c *dpop.Claims) {
	if p.dpopJTIs == nil {
		p.dpopJTIs = map[string]bool{}
	}
	p.dpopJTIs[c.JTI] = true
	p.stats.DPoPProofs++
}

// dpopTokenLocked checks the DPoP proof of a token request (RFC 9449 §5).
// It returns the thumbprint to bind the access token to ("" for a Bearer
// token); or a nonce challenge (the nonce to send and the error); or an
// invalid_dpop_proof error. Caller holds p.mu.
func (p *Provider) dpopTokenLocked(r *http.Request) (jkt, nonce string, terr *tokenError) {
	if !p.dpop || len(r.Header.Values("DPoP")) == 0 {
		return "", "", nil
	}
	c, ok := p.checkProofLocked(r, "/token", "")
	if !ok {
		return "", "", &tokenError{http.StatusBadRequest, "invalid_dpop_proof", "DPoP proof rejected"}
	}
	if p.dpopNonceRequired && c.Nonce != p.dpopNonce {
		p.stats.DPoPNonceChallenges++
		return "", p.dpopNonce, &tokenError{http.StatusBadRequest, "use_dpop_nonce", "authorization server requires nonce in DPoP proof"}
	}
	p.acceptProofLocked(c)
	return c.JKT, "", nil
}

// tokenType is the token_type of an access token bound to jkt.
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}

// userinfoTokenLocked finds the live access token a userinfo request
// presents. A Bearer token goes in `Authorization: Bearer` (RFC 6750 §2.1);
// a DPoP-bound token only in `Authorization: DPoP` with a proof that
// carries its hash and is signed by the bound key (RFC 9449 §7). It
// returns the authentication scheme to challenge with on failure. Caller
// holds p.mu.
func (p *Provider) userinfoTokenLocked(r *http.Request) (*accessToken, string) {
	authz := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(authz, "DPoP "); ok {
		at := p.access[token]
		if at == nil || at.jkt == "" {
			return nil, "DPoP"
		}
		c, ok := p.checkProofLocked(r, "/userinfo", token)
		if !ok || c.JKT != at.jkt {
			return nil, "DPoP"
		}
		p.acceptProofLocked(c)
		return at, "DPoP"
	}
	token, ok := strings.CutPrefix(authz, "Bearer ")
	at := p.access[token]
	if !ok || at == nil {
		return nil, "Bearer"
	}
	if at.jkt != "" {
		// RFC 9449 §7.2: a DPoP-bound token presented as a Bearer token.
		return nil, "DPoP"
	}
	return at, "Bearer"
}
