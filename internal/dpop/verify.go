package dpop

import (
	"crypto"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrInvalidProof is wrapped by every error [Verify] and [VerifyProof]
// return for a proof that fails a check.
var ErrInvalidProof = errors.New("dpop: invalid proof")

// allowedAlgs are the asymmetric algorithms a proof may use. RFC 9449 §4.3
// forbids `none` and symmetric (MAC) algorithms.
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

// Algorithms returns the algorithms [VerifyProof] accepts, for the `algs`
// parameter of a DPoP challenge (RFC 9449 §7.1).
func Algorithms() []jose.SignatureAlgorithm { return slices.Clone(allowedAlgs) }

// Claims are the checked contents of a DPoP proof.
type Claims struct {
	JTI      string    // unique proof identifier, for replay detection (RFC 9449 §11.1)
	HTM      string    // HTTP method
	HTU      string    // HTTP target URI as sent
	IssuedAt time.Time // iat
	ATH      string    // access token hash, "" when absent
	Nonce    string    // server-provided nonce, "" when absent
	JKT      string    // RFC 7638 SHA-256 thumbprint of the proof key
}

// Verify checks a DPoP proof for a request with the given method and URL
// (RFC 9449 §4.3) and returns the thumbprint (`jkt`) of its key. See
// [VerifyProof] for the checks.
func Verify(proof, method, rawURL, accessToken string, now time.Time, maxAge time.Duration) (jkt string, err error) {
	c, err := VerifyProof(proof, method, rawURL, accessToken, now, maxAge)
	if err != nil {
		return "", err
	}
	return c.JKT, nil
}

// VerifyProof checks a DPoP proof as RFC 9449 §4.3 asks: a single JWS
// signed with an asymmetric algorithm (ES256, RS256, PS256 or EdDSA; never
// `none` or a MAC), `typ` dpop+jwt, a public `jwk` header the signature
// verifies with, `jti` present, `htm` equal to method, `htu` equal to
// rawURL after normalization and without query and fragment, `iat` no more
// than maxAge away from now in either direction, and, when accessToken is
// not empty, `ath` equal to its hash. Checking the nonce and jti replay is
// left to the caller, which gets them in the returned Claims.
func VerifyProof(proof, method, rawURL, accessToken string, now time.Time, maxAge time.Duration) (*Claims, error) {
	tok, err := jwt.ParseSigned(proof, allowedAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", ErrInvalidProof)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != ProofType {
		return nil, fmt.Errorf("%w: typ is not %s", ErrInvalidProof, ProofType)
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, fmt.Errorf("%w: jwk header missing or not a public key", ErrInvalidProof)
	}
	var raw struct {
		JTI   string           `json:"jti"`
		HTM   string           `json:"htm"`
		HTU   string           `json:"htu"`
		IAT   *jwt.NumericDate `json:"iat"`
		ATH   string           `json:"ath"`
		Nonce string           `json:"nonce"`
	}
	if err := tok.Claims(jwk, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	if raw.JTI == "" {
		return nil, fmt.Errorf("%w: jti missing", ErrInvalidProof)
	}
	if raw.HTM != method {
		return nil, fmt.Errorf("%w: htm does not match the request method", ErrInvalidProof)
	}
	got, err := normalizeURI(raw.HTU)
	if err != nil {
		return nil, fmt.Errorf("%w: htu: %w", ErrInvalidProof, err)
	}
	want, err := normalizeURI(rawURL)
	if err != nil {
		return nil, fmt.Errorf("dpop: request uri: %w", err)
	}
	if got != want {
		return nil, fmt.Errorf("%w: htu does not match the request uri", ErrInvalidProof)
	}
	if raw.IAT == nil {
		return nil, fmt.Errorf("%w: iat missing", ErrInvalidProof)
	}
	iat := raw.IAT.Time()
	if d := now.Sub(iat); d > maxAge || d < -maxAge {
		return nil, fmt.Errorf("%w: iat outside the accepted window", ErrInvalidProof)
	}
	if accessToken != "" {
		if raw.ATH == "" {
			return nil, fmt.Errorf("%w: ath missing", ErrInvalidProof)
		}
		if subtle.ConstantTimeCompare([]byte(raw.ATH), []byte(AccessTokenHash(accessToken))) != 1 {
			return nil, fmt.Errorf("%w: ath does not match the access token", ErrInvalidProof)
		}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: thumbprint: %w", ErrInvalidProof, err)
	}
	return &Claims{JTI: raw.JTI, HTM: raw.HTM, HTU: raw.HTU, IssuedAt: iat, ATH: raw.ATH,
		Nonce: raw.Nonce, JKT: base64.RawURLEncoding.EncodeToString(tp)}, nil
}
