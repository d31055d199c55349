package provider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AuthPrivateKeyJWT is the private_key_jwt client authentication method
// (OpenID Connect Core §9, RFC 7523 §2.2): the client proves itself with a
// short-lived JWT signed by its private key instead of a shared secret, as
// RFC 9700 §2.5 recommends.
const AuthPrivateKeyJWT = "private_key_jwt"

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid.
const assertionLifetime = time.Minute

// ParsePrivateKey reads a PEM private key (PKCS #8, PKCS #1 RSA or SEC 1
// EC) for private_key_jwt.
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("provider: no PEM block in the private key file")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("provider: private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("provider: private key cannot sign")
	}
	if _, err := signingAlg(signer); err != nil {
		return nil, err
	}
	return signer, nil
}

// signingAlg picks the JWS algorithm for key.
func signingAlg(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return "", errors.New("provider: an RSA client key needs at least 2048 bits")
		}
		return jose.RS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	}
	return "", errors.New("provider: unsupported client key type")
}

// clientAuth returns the parameters that authenticate the client to the
// endpoint at aud with private_key_jwt, or nil for the secret methods
// (which x/oauth2 or Revoke add themselves).
func (p *Provider) clientAuth(aud string) (url.Values, error) {
	if p.opts.ClientKey == nil {
		return nil, nil
	}
	alg, err := signingAlg(p.opts.ClientKey)
	if err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if p.opts.ClientKeyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), p.opts.ClientKeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: p.opts.ClientKey}, opts)
	if err != nil {
		return nil, fmt.Errorf("provider: client assertion: %w", err)
	}
	now := p.opts.Now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   p.opts.ClientID,
		Subject:  p.opts.ClientID,
		Audience: jwt.Audience{aud},
		ID:       rand.Text(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(assertionLifetime)),
	}).Serialize()
	if err != nil {
		return nil, fmt.Errorf("provider: client assertion: %w", err)
	}
	return url.Values{
		"client_assertion_type": {clientAssertionType},
		"client_assertion":      {raw},
	}, nil
}
