package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ProofType is the `typ` header of a DPoP proof (RFC 9449 §4.2).
const ProofType = "dpop+jwt"

// Key is an ES256 (ECDSA P-256) DPoP key pair. It is immutable and safe for
// concurrent use.
type Key struct {
	priv   *ecdsa.PrivateKey
	signer jose.Signer
	jkt    string
}

// NewKey generates a fresh P-256 key pair.
func NewKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dpop: generate key: %w", err)
	}
	return newKey(priv)
}

// ParseKey decodes a key written by [Key.Marshal] (PKCS #8 DER). Only
// P-256 ECDSA keys are accepted.
func ParseKey(der []byte) (*Key, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("dpop: parse key: %w", err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("dpop: parse key: not a P-256 ECDSA key")
	}
	return newKey(priv)
}

func newKey(priv *ecdsa.PrivateKey) (*Key, error) {
	pub := jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: string(jose.ES256)}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("dpop: thumbprint: %w", err)
	}
	// RFC 9449 §4.2: the proof header carries the public key as `jwk`.
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(ProofType)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, opts)
	if err != nil {
		return nil, fmt.Errorf("dpop: signer: %w", err)
	}
	return &Key{priv: priv, signer: signer, jkt: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// Marshal encodes the private key as PKCS #8 DER. The result is secret:
// store it only sealed.
func (k *Key) Marshal() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("dpop: marshal key: %w", err)
	}
	return der, nil
}

// Thumbprint returns the RFC 7638 SHA-256 JWK thumbprint of the public key,
// base64url without padding: the `jkt` tokens are bound to (RFC 9449 §6).
func (k *Key) Thumbprint() string { return k.jkt }

// proofClaims are the claims of a DPoP proof (RFC 9449 §4.2).
type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// Proof returns a DPoP proof JWT for one request (RFC 9449 §4.2): `htm` is
// method, `htu` is rawURL without query and fragment, `iat` is now, `jti` is
// random. With a non-empty accessToken the proof carries its hash as `ath`
// (§4.2, for resource requests); with a non-empty nonce, the server-provided
// `nonce` (§8).
func (k *Key) Proof(method, rawURL, accessToken, nonce string, now time.Time) (string, error) {
	htu, err := targetURI(rawURL)
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("dpop: jti: %w", err)
	}
	c := proofClaims{
		JTI:   base64.RawURLEncoding.EncodeToString(jti),
		HTM:   method,
		HTU:   htu,
		IAT:   now.Unix(),
		Nonce: nonce,
	}
	if accessToken != "" {
		c.ATH = AccessTokenHash(accessToken)
	}
	s, err := jwt.Signed(k.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("dpop: sign proof: %w", err)
	}
	return s, nil
}

// AccessTokenHash returns the `ath` value for an access token: base64url of
// its SHA-256 hash (RFC 9449 §4.2).
func AccessTokenHash(accessToken string) string {
	h := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// targetURI returns rawURL without query and fragment, as `htu` carries it
// (RFC 9449 §4.2).
func targetURI(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("dpop: target uri: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", errors.New("dpop: target uri is not absolute")
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	u.User = nil
	return u.String(), nil
}

// normalizeURI applies the syntax-based normalization of RFC 3986 §6.2.2
// and scheme-based normalization of §6.2.3 that RFC 9449 §4.3 asks for
// before comparing `htu`: lower-case scheme and host, default port removed,
// empty path as "/", query and fragment dropped.
func normalizeURI(raw string) (string, error) {
	htu, err := targetURI(raw)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(htu)
	if err != nil {
		return "", fmt.Errorf("dpop: target uri: %w", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	return u.String(), nil
}
