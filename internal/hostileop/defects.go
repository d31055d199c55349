package hostileop

import (
	"fmt"
	"maps"
	"time"
)

// Defect is how an ID token is broken. Each defect breaks exactly one thing
// an OIDC Core §3.1.3.7 relying party must check; everything else about the
// token stays valid.
type Defect int

// ID token defects.
const (
	// Valid issues correct ID tokens.
	Valid Defect = iota
	// BadSignature flips one bit of an otherwise valid RS256 signature.
	BadSignature
	// WrongIssuer sets `iss` to another provider's issuer.
	WrongIssuer
	// IssuerTrailingSlash sets `iss` to the issuer with a "/" appended.
	IssuerTrailingSlash
	// IssuerMissing omits `iss`.
	IssuerMissing
	// WrongAudience sets `aud` to another client only.
	WrongAudience
	// AudienceMissing omits `aud`.
	AudienceMissing
	// MultipleAudiencesNoAzp sets `aud` to the client and another audience,
	// without `azp`.
	MultipleAudiencesNoAzp
	// WrongAzp sets `aud` to the client and another audience, with `azp`
	// naming the other one.
	WrongAzp
	// Expired sets `exp` one hour in the past (and `iat` two).
	Expired
	// ExpMissing omits `exp`.
	ExpMissing
	// NonceMismatch sets `nonce` to a value the client never sent.
	NonceMismatch
	// NonceMissing omits `nonce` although the client sent one.
	NonceMissing
	// SubMissing omits `sub`.
	SubMissing
	// DifferentSub sets `sub` to another user's (as if a refreshed ID token
	// named a different user; OIDC Core §12.2).
	DifferentSub
	// IatMissing omits `iat`.
	IatMissing
	// AlgNone issues an Unsecured JWS: `alg: none`, empty signature.
	AlgNone
	// HS256WithClientSecret signs with HMAC-SHA256 keyed by the client
	// secret, keeping the RSA key's `kid` (the algorithm-confusion attack).
	// The client secret must be at least 32 bytes.
	HS256WithClientSecret
	// UnknownKid signs with the provider's next key, whose `kid` the JWKS
	// does not publish until RotateKeys; after rotation the token verifies.
	UnknownKid
	// WrongKidNoKey signs with a key whose `kid` is never published.
	WrongKidNoKey
	// AuthTimeMissing omits `auth_time`. That breaks a token only when the
	// client sent max_age (OpenID Connect Core §3.1.2.1), so it is not in
	// Defects.
	AuthTimeMissing
)

// Defects lists every ID token defect except Valid, for table tests.
func Defects() []Defect {
	out := make([]Defect, 0, int(WrongKidNoKey))
	for d := BadSignature; d <= WrongKidNoKey; d++ {
		out = append(out, d)
	}
	return out
}

var defectNames = map[Defect]string{
	Valid: "Valid", BadSignature: "BadSignature", WrongIssuer: "WrongIssuer",
	IssuerTrailingSlash: "IssuerTrailingSlash", IssuerMissing: "IssuerMissing",
	WrongAudience: "WrongAudience", AudienceMissing: "AudienceMissing",
	MultipleAudiencesNoAzp: "MultipleAudiencesNoAzp", WrongAzp: "WrongAzp",
	Expired: "Expired", ExpMissing: "ExpMissing", NonceMismatch: "NonceMismatch",
	NonceMissing: "NonceMissing", SubMissing: "SubMissing", DifferentSub: "DifferentSub",
	IatMissing: "IatMissing", AlgNone: "AlgNone", HS256WithClientSecret: "HS256WithClientSecret",
	UnknownKid: "UnknownKid", WrongKidNoKey: "WrongKidNoKey", AuthTimeMissing: "AuthTimeMissing",
}

// String returns the defect's name.
func (d Defect) String() string {
	if s, ok := defectNames[d]; ok {
		return s
	}
	return fmt.Sprintf("Defect(%d)", int(d))
}

// Values that defects substitute for the real ones.
const (
	// OtherIssuer is the issuer WrongIssuer tokens and wrong `iss`
	// parameters name.
	OtherIssuer = "https://attacker.example"
	// OtherAudience is the audience that wrong-audience and wrong-azp
	// tokens name.
	OtherAudience = "some-other-client"
	// OtherSubject is the `sub` of DifferentSub tokens.
	OtherSubject = "someone-else"
)

// IssParam is how authorization responses carry the RFC 9207 `iss`
// parameter, and whether discovery advertises
// authorization_response_iss_parameter_supported.
type IssParam int

// RFC 9207 modes.
const (
	// IssParamCorrect sends the issuer and advertises support.
	IssParamCorrect IssParam = iota
	// IssParamWrong sends OtherIssuer and advertises support (mix-up).
	IssParamWrong
	// IssParamMissing sends no `iss` although discovery advertises support.
	IssParamMissing
	// IssParamUnsupported sends no `iss` and does not advertise support.
	IssParamUnsupported
	// IssParamUnadvertised sends the issuer without advertising support.
	IssParamUnadvertised
)

// RefreshMode is how refresh_token grants are answered.
type RefreshMode int

// Refresh modes.
const (
	// RefreshRotate issues a new refresh token on every refresh. Presenting a
	// rotated-away one again gets 400 invalid_grant and revokes the whole
	// family: every refresh and access token of that authorization
	// (RFC 9700 §4.14.2).
	RefreshRotate RefreshMode = iota
	// RefreshNonRotating omits refresh_token from the response; the
	// presented one stays valid.
	RefreshNonRotating
	// RefreshInvalidGrant answers every refresh with 400 invalid_grant.
	RefreshInvalidGrant
	// RefreshServerError answers every refresh with 500 server_error.
	RefreshServerError
	// RefreshSlow waits SetRefreshDelay, then behaves as RefreshRotate.
	RefreshSlow
)

// idTokenClaims builds the claims of an ID token for g, issued to clientID
// at the provider's current time, with p.defect applied. Caller holds p.mu.
func (p *Provider) idTokenClaims(g *grant, clientID string, withNonce bool) map[string]any {
	now := p.now()
	c := maps.Clone(g.claims)
	if c == nil {
		c = map[string]any{}
	}
	c["iss"] = p.URL
	c["sub"] = g.sub
	c["aud"] = clientID
	c["iat"] = now.Unix()
	c["exp"] = now.Add(IDTokenTTL).Unix()
	c["auth_time"] = g.authTime.Unix()
	if g.acr != "" {
		c["acr"] = g.acr
	}
	if g.sid != "" {
		c["sid"] = g.sid
	}
	if withNonce && g.nonce != "" {
		c["nonce"] = g.nonce
	}
	switch p.defect {
	case WrongIssuer:
		c["iss"] = OtherIssuer
	case IssuerTrailingSlash:
		c["iss"] = p.URL + "/"
	case IssuerMissing:
		delete(c, "iss")
	case WrongAudience:
		c["aud"] = OtherAudience
	case AudienceMissing:
		delete(c, "aud")
	case MultipleAudiencesNoAzp:
		c["aud"] = []string{clientID, OtherAudience}
		delete(c, "azp")
	case WrongAzp:
		c["aud"] = []string{clientID, OtherAudience}
		c["azp"] = OtherAudience
	case Expired:
		c["iat"] = now.Add(-2 * time.Hour).Unix()
		c["exp"] = now.Add(-time.Hour).Unix()
	case ExpMissing:
		delete(c, "exp")
	case NonceMismatch:
		c["nonce"] = randomString("not-your-nonce-")
	case NonceMissing:
		delete(c, "nonce")
	case SubMissing:
		delete(c, "sub")
	case DifferentSub:
		c["sub"] = OtherSubject
	case IatMissing:
		delete(c, "iat")
	case AuthTimeMissing:
		delete(c, "auth_time")
	}
	return c
}

// signIDToken signs ID token claims as p.defect demands. Caller holds p.mu.
func (p *Provider) signIDToken(clientID string, claims map[string]any) (string, error) {
	switch p.defect {
	case AlgNone:
		return unsecuredJWT("JWT", claims)
	case HS256WithClientSecret:
		c, ok := p.clients[clientID]
		if !ok {
			return "", fmt.Errorf("hostileop: HS256 defect: unknown client %q", clientID)
		}
		return signHS256([]byte(c.Secret), p.keys.current.kid, "JWT", claims)
	case UnknownKid:
		k, err := p.keys.nextKey()
		if err != nil {
			return "", err
		}
		return signRS256(k, false, "JWT", claims)
	case WrongKidNoKey:
		k, err := p.keys.unpublishedKey()
		if err != nil {
			return "", err
		}
		return signRS256(k, false, "JWT", claims)
	case BadSignature:
		raw, err := signRS256(p.keys.current, p.keys.noKid, "JWT", claims)
		if err != nil {
			return "", err
		}
		return corruptSignature(raw)
	default:
		return signRS256(p.keys.current, p.keys.noKid, "JWT", claims)
	}
}

// issueIDToken builds, signs and records an ID token. Caller holds p.mu.
func (p *Provider) issueIDToken(g *grant, clientID string, withNonce bool) (string, error) {
	raw, err := p.signIDToken(clientID, p.idTokenClaims(g, clientID, withNonce))
	if err != nil {
		return "", err
	}
	p.idTokens[raw] = clientID
	p.idTokenSIDs[raw] = g.sid
	p.issued = append(p.issued, raw)
	return raw, nil
}

// MintIDToken issues an ID token outside any flow: for the current user and
// the default client, with a new sid, the given nonce ("" for none) and the
// current defect. It fails the test if signing fails.
func (p *Provider) MintIDToken(nonce string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.newGrantLocked(p.first, nonce, "openid")
	raw, err := p.issueIDToken(g, p.first, true)
	if err != nil {
		p.tb.Fatalf("hostileop: %v", err)
	}
	return raw
}
