package dpop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

type ctxKey struct{}

// WithKey returns a context whose HTTP requests sent through [Transport]
// carry DPoP proofs made with k.
func WithKey(ctx context.Context, k *Key) context.Context {
	return context.WithValue(ctx, ctxKey{}, k)
}

// KeyFrom returns the key stored by [WithKey], or nil.
func KeyFrom(ctx context.Context) *Key {
	k, _ := ctx.Value(ctxKey{}).(*Key)
	return k
}

// NonceHeader is the response header a server sends its nonce in
// (RFC 9449 §8).
const NonceHeader = "DPoP-Nonce"

// maxErrorBody bounds how much of a 400 response is read to look for
// use_dpop_nonce.
const maxErrorBody = 64 << 10

// Transport returns a round tripper for token endpoint requests that adds a
// DPoP proof (without `ath`) to every request whose context carries a key
// ([WithKey]), using time.Now for `iat`. See [NewTransport].
func Transport(base http.RoundTripper) http.RoundTripper {
	return NewTransport(base, time.Now)
}

// NewTransport is [Transport] with an explicit clock for the proofs' `iat`.
// A nil base means http.DefaultTransport; a nil now means time.Now.
//
// When the server answers 400 with error use_dpop_nonce and a DPoP-Nonce
// header (RFC 9449 §8), the request is retried once with a proof carrying
// that nonce; the body is replayed with Request.GetBody, and without
// GetBody the 400 is returned as it is. The last nonce each origin sent is
// remembered and put in the next proof to it. Requests without a key pass
// through untouched. The transport is safe for concurrent use.
func NewTransport(base http.RoundTripper, now func() time.Time) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if now == nil {
		now = time.Now
	}
	return &transport{base: base, now: now, nonces: map[string]string{}}
}

type transport struct {
	base http.RoundTripper
	now  func() time.Time

	mu     sync.Mutex
	nonces map[string]string // origin → last nonce it sent
}

func origin(r *http.Request) string {
	return strings.ToLower(r.URL.Scheme + "://" + r.URL.Host)
}

func (t *transport) nonce(o string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nonces[o]
}

func (t *transport) remember(o string, res *http.Response) {
	if n := res.Header.Get(NonceHeader); n != "" {
		t.mu.Lock()
		t.nonces[o] = n
		t.mu.Unlock()
	}
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	k := KeyFrom(req.Context())
	if k == nil {
		return t.base.RoundTrip(req)
	}
	o := origin(req)
	res, err := t.send(req, k, t.nonce(o), req.Body)
	if err != nil {
		return nil, err
	}
	t.remember(o, res)
	if res.StatusCode != http.StatusBadRequest || res.Header.Get(NonceHeader) == "" {
		return res, nil
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error != "use_dpop_nonce" {
		return res, nil
	}
	var retryBody io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return res, nil
		}
		if retryBody, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	retry, err := t.send(req, k, res.Header.Get(NonceHeader), retryBody)
	if err != nil {
		return nil, err
	}
	t.remember(o, retry)
	return retry, nil
}

// send sends a copy of req with body and a fresh proof; the original
// request is not modified (http.RoundTripper contract).
func (t *transport) send(req *http.Request, k *Key, nonce string, body io.ReadCloser) (*http.Response, error) {
	// A request that presents a DPoP-bound access token (UserInfo, say)
	// binds the proof to it with ath (RFC 9449 §7.1).
	token := ""
	if scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "DPoP") {
		token = tok
	}
	proof, err := k.Proof(req.Method, req.URL.String(), token, nonce, t.now())
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("DPoP", proof)
	return t.base.RoundTrip(r)
}
