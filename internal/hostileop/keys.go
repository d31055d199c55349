package hostileop

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newSigningKey(prefix string) (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("hostileop: generate rsa key: %w", err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	return &signingKey{kid: prefix + hex.EncodeToString(b), priv: priv}, nil
}

func (k *signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"}
}

// keyring holds the provider's RSA keys. Only current, retired and extra
// keys are published in the JWKS; next and unpublished never are until
// rotation makes next current. Guarded by Provider.mu.
type keyring struct {
	current     *signingKey
	next        *signingKey   // signs UnknownKid tokens; becomes current on rotate
	retired     []*signingKey // published until RetireOldKeys
	extra       []*signingKey // published decoys, SetExtraKeys
	nExtra      int
	unpublished *signingKey // signs WrongKidNoKey tokens, never published
	noKid       bool
}

func (k *keyring) init() error {
	cur, err := newSigningKey("hostileop-")
	if err != nil {
		return err
	}
	k.current = cur
	return nil
}

func (k *keyring) nextKey() (*signingKey, error) {
	if k.next == nil {
		n, err := newSigningKey("hostileop-")
		if err != nil {
			return nil, err
		}
		k.next = n
	}
	return k.next, nil
}

func (k *keyring) unpublishedKey() (*signingKey, error) {
	if k.unpublished == nil {
		u, err := newSigningKey("hostileop-unpublished-")
		if err != nil {
			return nil, err
		}
		k.unpublished = u
	}
	return k.unpublished, nil
}

func (k *keyring) rotate() error {
	n, err := k.nextKey()
	if err != nil {
		return err
	}
	k.retired = append(k.retired, k.current)
	k.current = n
	k.next = nil
	return nil
}

func (k *keyring) setExtra(n int) error {
	for len(k.extra) < n {
		e, err := newSigningKey("hostileop-extra-")
		if err != nil {
			return err
		}
		k.extra = append(k.extra, e)
	}
	k.nExtra = max(n, 0)
	return nil
}

func (k *keyring) jwks() jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.current.public()}}
	for _, r := range k.retired {
		set.Keys = append(set.Keys, r.public())
	}
	for _, e := range k.extra[:k.nExtra] {
		set.Keys = append(set.Keys, e.public())
	}
	return set
}

// signRS256 signs claims with key, with a kid header unless noKid.
func signRS256(key *signingKey, noKid bool, typ string, claims map[string]any) (string, error) {
	kid := key.kid
	if noKid {
		kid = ""
	}
	return sign(jose.SigningKey{Algorithm: jose.RS256, Key: key.priv}, kid, typ, claims)
}

// signHS256 signs claims with HMAC-SHA256 keyed by secret, carrying kid
// (the RSA key's id, as in the classic key-confusion attack) if not "".
func signHS256(secret []byte, kid, typ string, claims map[string]any) (string, error) {
	return sign(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, kid, typ, claims)
}

func sign(key jose.SigningKey, kid, typ string, claims map[string]any) (string, error) {
	opts := &jose.SignerOptions{}
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		return "", fmt.Errorf("hostileop: new signer: %w", err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("hostileop: sign: %w", err)
	}
	return raw, nil
}

// unsecuredJWT builds an Unsecured JWS (RFC 7515 Appendix A.5, `alg: none`,
// empty signature). go-jose refuses to produce one by design, so the three
// compact parts are assembled here; nothing is parsed.
func unsecuredJWT(typ string, claims map[string]any) (string, error) {
	header := map[string]string{"alg": "none"}
	if typ != "" {
		header["typ"] = typ
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("hostileop: unsecured jwt header: %w", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("hostileop: unsecured jwt claims: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + ".", nil
}

// corruptSignature flips one bit of a compact JWS's signature, leaving the
// header and payload intact.
func corruptSignature(compact string) (string, error) {
	i := strings.LastIndexByte(compact, '.')
	if i < 0 {
		return "", errors.New("hostileop: corrupt signature: not a compact jws")
	}
	sig, err := base64.RawURLEncoding.DecodeString(compact[i+1:])
	if err != nil || len(sig) == 0 {
		return "", fmt.Errorf("hostileop: corrupt signature: %w", errors.Join(err, errors.New("empty signature")))
	}
	sig[len(sig)/2] ^= 0x01
	return compact[:i+1] + base64.RawURLEncoding.EncodeToString(sig), nil
}
