package apiauth_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-bff/gatehouse/apiauth"
	"github.com/gatehouse-bff/gatehouse/internal/dpop"
	"github.com/gatehouse-bff/gatehouse/internal/interoptest"
)

// interopResource is the resource indicator (RFC 8707) of the API under
// test, for which oidc-provider issues JWT access tokens.
const interopResource = "https://orders.interop.test"

// TestInteropJWTAccessTokens gets access tokens from npm oidc-provider the
// way a confidential client such as Gatehouse does (code flow with PKCE
// and a resource indicator; once with a DPoP key) and has apiauth verify
// them: RFC 9068 tokens with typ at+jwt, and RFC 9449 DPoP-bound ones.
func TestInteropJWTAccessTokens(t *testing.T) {
	const redirect = "http://127.0.0.1:9/callback"
	op := interoptest.Start(t, interoptest.Options{
		RedirectURI: redirect, AutoLoginSub: "interop-alice", Resources: []string{interopResource},
	})
	ctx := t.Context()
	p, err := oidc.NewProvider(ctx, op.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{
		ClientID: op.Options().ClientID, ClientSecret: op.Options().ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID, "orders:read"},
	}
	resource := oauth2.SetAuthURLParam("resource", interopResource)

	var orders http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiauth.FromContext(r.Context())
		w.Write([]byte(c.Subject()))
	})
	v, err := apiauth.New(apiauth.Config{Issuer: op.Issuer(), Audience: interopResource})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /orders", apiauth.RequireScope("orders:read")(orders))
	mux.Handle("POST /orders", apiauth.RequireScope("orders:write")(orders))
	api := httptest.NewServer(v.Handler(mux))
	t.Cleanup(api.Close)

	call := func(method, scheme, token, proof string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, api.URL+"/orders", nil)
		req.Header.Set("Authorization", scheme+" "+token)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(body)
	}

	t.Run("bearer", func(t *testing.T) {
		code, verifier := interopLogin(t, conf, resource)
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier), resource)
		if err != nil {
			t.Fatalf("code exchange: %v", err)
		}
		if status, body := call("GET", "Bearer", tok.AccessToken, ""); status != 200 || body != "interop-alice" {
			t.Fatalf("GET with the JWT access token: %d %q, want 200 interop-alice", status, body)
		}
		if status, _ := call("POST", "Bearer", tok.AccessToken, ""); status != 403 {
			t.Errorf("POST needing orders:write: %d, want 403", status)
		}
		other, _ := apiauth.New(apiauth.Config{Issuer: op.Issuer(), Audience: "https://billing.interop.test"})
		if got := serve(other, bearer("http://api.test/", tok.AccessToken)); got.status != 401 {
			t.Errorf("token for %s at another API: %d, want 401", interopResource, got.status)
		}
	})

	t.Run("no resource gives an opaque token, refused", func(t *testing.T) {
		code, verifier := interopLogin(t, conf)
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("code exchange: %v", err)
		}
		if status, _ := call("GET", "Bearer", tok.AccessToken, ""); status != 401 {
			t.Errorf("opaque UserInfo token: %d, want 401", status)
		}
	})

	t.Run("DPoP-bound", func(t *testing.T) {
		key, err := dpop.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		code, verifier := interopLogin(t, conf, resource)
		dctx := context.WithValue(dpop.WithKey(ctx, key), oauth2.HTTPClient, &http.Client{Transport: dpop.Transport(http.DefaultTransport)})
		tok, err := conf.Exchange(dctx, code, oauth2.VerifierOption(verifier), resource)
		if err != nil {
			t.Fatalf("code exchange with DPoP: %v", err)
		}
		if !strings.EqualFold(tok.TokenType, "DPoP") {
			t.Fatalf("token_type %q, want DPoP", tok.TokenType)
		}
		url := api.URL + "/orders"
		proof := func() string {
			p, err := key.Proof("GET", url, tok.AccessToken, "", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		first := proof()
		if status, body := call("GET", "DPoP", tok.AccessToken, first); status != 200 || body != "interop-alice" {
			t.Fatalf("GET with the DPoP-bound token: %d %q, want 200", status, body)
		}
		if status, _ := call("GET", "DPoP", tok.AccessToken, first); status != 401 {
			t.Errorf("replayed proof: %d, want 401", status)
		}
		if status, _ := call("GET", "Bearer", tok.AccessToken, ""); status != 401 {
			t.Errorf("DPoP-bound token as Bearer: %d, want 401", status)
		}
		otherKey, _ := dpop.NewKey()
		stolen, _ := otherKey.Proof("GET", url, tok.AccessToken, "", time.Now())
		if status, _ := call("GET", "DPoP", tok.AccessToken, stolen); status != 401 {
			t.Errorf("bound token with another key's proof: %d, want 401", status)
		}
		if status, _ := call("GET", "DPoP", tok.AccessToken, proof()); status != 200 {
			t.Errorf("fresh proof: %d, want 200", status)
		}
	})
}

// interopLogin runs the authorization request to the provider (which
// signs interop-alice in and grants consent without a form) and returns
// the code and the PKCE verifier.
func interopLogin(t *testing.T, conf *oauth2.Config, opts ...oauth2.AuthCodeOption) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	state := rand.Text()
	opts = append(opts, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", rand.Text()))
	jar, _ := cookiejar.New(nil)
	var callback *url.URL
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), conf.RedirectURL) {
			callback = r.URL
			return http.ErrUseLastResponse
		}
		if len(via) > 10 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	resp, err := client.Get(conf.AuthCodeURL(state, opts...))
	if err != nil {
		t.Fatalf("authorization request: %v", err)
	}
	resp.Body.Close()
	if callback == nil {
		t.Fatalf("authorization request ended with %d at %s, not at the redirect URI", resp.StatusCode, resp.Request.URL)
	}
	q := callback.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback %s: want the state and a code", callback.Redacted())
	}
	return q.Get("code"), verifier
}
