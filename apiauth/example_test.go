package apiauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-bff/gatehouse/apiauth"
)

// An orders API that accepts the provider's access tokens: any verified
// token may list orders, creating one needs the orders:write scope, and a
// request without a token is told to bring one.
func Example() {
	op := newExampleProvider() // stands in for the OpenID provider
	defer op.Close()

	v, err := apiauth.New(apiauth.Config{
		Issuer:   op.URL,
		Audience: "https://orders.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := apiauth.FromContext(r.Context())
		fmt.Fprintf(w, "orders of %s", claims.Subject())
	})
	mux := http.NewServeMux()
	mux.Handle("GET /orders", orders)
	mux.Handle("POST /orders", apiauth.RequireScope("orders:write")(orders))
	api := v.Handler(mux)

	token := op.token("alice", "orders:read")
	for _, req := range []struct{ method, authorization string }{
		{"GET", "Bearer " + token},
		{"POST", "Bearer " + token},
		{"GET", ""},
		{"GET", "Bearer " + token[:len(token)-4] + "AAAA"},
	} {
		r := httptest.NewRequest(req.method, "https://orders.example.com/orders", nil)
		if req.authorization != "" {
			r.Header.Set("Authorization", req.authorization)
		}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		fmt.Printf("%s %d %q %s\n", req.method, w.Code, w.Header().Values("WWW-Authenticate"), strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// GET 200 [] orders of alice
	// POST 403 ["Bearer error=\"insufficient_scope\", scope=\"orders:write\""] {"error":"insufficient_scope"}
	// GET 401 ["Bearer" "DPoP algs=\"ES256 RS256 PS256 EdDSA\""] {"error":"unauthorized"}
	// GET 401 ["Bearer error=\"invalid_token\""] {"error":"invalid_token"}
}

// Check is for code that answers refusals itself; WriteError answers as
// Handler would.
func ExampleVerifier_Check() {
	op := newExampleProvider()
	defer op.Close()
	v, err := apiauth.New(apiauth.Config{Issuer: op.URL, Audience: "https://orders.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		claims, err := v.Check(r)
		if err != nil {
			apiauth.WriteError(w, err)
			return
		}
		fmt.Fprintf(w, "hello %s", claims.Subject())
	}

	r := httptest.NewRequest("GET", "https://orders.example.com/me", nil)
	r.Header.Set("Authorization", "Bearer "+op.token("bob", "orders:read"))
	w := httptest.NewRecorder()
	handler(w, r)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 200 hello bob
}

// RequireClaim admits a request when a claim has one of the values; for an
// array claim such as groups, when it contains one.
func ExampleRequireClaim() {
	op := newExampleProvider()
	defer op.Close()
	v, err := apiauth.New(apiauth.Config{Issuer: op.URL, Audience: "https://orders.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	admin := v.Handler(apiauth.RequireClaim("groups", "admins", "ops")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "admin area")
	})))

	for _, sub := range []string{"alice", "bob"} {
		r := httptest.NewRequest("GET", "https://orders.example.com/admin", nil)
		r.Header.Set("Authorization", "Bearer "+op.token(sub, "orders:read"))
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, r)
		fmt.Println(sub, w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// alice 200 admin area
	// bob 403 {"error":"forbidden"}
}

// An API that does not see tokens trusts the gateway's signed assertion
// instead: Gatehouse adds X-Gatehouse-Assertion on routes with
// identity.assertion: true, and publishes its keys at /bff/jwks.json.
func ExampleConfig_assertion() {
	gateway := newExampleProvider() // stands in for Gatehouse at its app origin
	defer gateway.Close()
	v, err := apiauth.New(apiauth.Config{
		Gateway:  gateway.URL, // the assertions' iss; keys at gateway.URL + "/bff/jwks.json"
		Audience: "http://orders:8080",
	})
	if err != nil {
		log.Fatal(err)
	}
	whoami := v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := apiauth.FromContext(r.Context())
		fmt.Fprintf(w, "%s <%s>", claims.Subject(), claims["email"])
	}))

	r := httptest.NewRequest("GET", "http://orders:8080/whoami", nil)
	r.Header.Set("X-Gatehouse-Assertion", gateway.assertion("alice", "http://orders:8080"))
	w := httptest.NewRecorder()
	whoami.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())

	r.Header.Set("X-Gatehouse-Assertion", gateway.assertion("alice", "http://billing:8080"))
	w = httptest.NewRecorder()
	whoami.ServeHTTP(w, r)
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	// Output:
	// 200 alice <alice@example.com>
	// 401 {"error":"invalid_token"}
}

// exampleProvider is a minimal OpenID provider (and gateway) for the
// examples: a discovery document, a JWKS and an ES256 key that signs RFC
// 9068 access tokens and assertions. alice is in the admins group; bob in
// none.
type exampleProvider struct {
	*httptest.Server
	key *ecdsa.PrivateKey
}

func newExampleProvider() *exampleProvider {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	p := &exampleProvider{key: key}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": p.URL, "jwks_uri": p.URL + "/jwks"})
		case "/jwks", "/bff/jwks.json":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
				{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"},
			}})
		default:
			http.NotFound(w, r)
		}
	}))
	return p
}

func (p *exampleProvider) token(sub, scope string) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		log.Fatal(err)
	}
	groups := []string{}
	if sub == "alice" {
		groups = []string{"staff", "admins"}
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": p.URL, "aud": "https://orders.example.com", "sub": sub, "client_id": "gatehouse",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": rand.Text(),
		"scope": scope, "groups": groups,
	}).Serialize()
	if err != nil {
		log.Fatal(err)
	}
	return tok
}

func (p *exampleProvider) assertion(sub, aud string) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		log.Fatal(err)
	}
	now := time.Now()
	a, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": p.URL, "aud": aud, "sub": sub, "email": sub + "@example.com",
		"iat": now.Unix(), "exp": now.Add(60 * time.Second).Unix(), "jti": rand.Text(),
	}).Serialize()
	if err != nil {
		log.Fatal(err)
	}
	return a
}
