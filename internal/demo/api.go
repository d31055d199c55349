package demo

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gatehouse-bff/gatehouse/apiauth"
)

// newExampleAPI returns the demo's protected API. It trusts nothing but
// the access token the gateway forwards, which apiauth verifies (signature
// with the provider's published keys, iss, aud, exp); it answers with the
// token's subject and scope, never echoing the token back.
//
// The development provider (zitadel/oidc's op) issues JWT access tokens
// with typ "JWT" rather than RFC 9068's at+jwt, and with the client id as
// audience, hence SkipTypCheck and Audience clientID: acceptable for the
// demo, not for production (see apiauth.Config.SkipTypCheck). A non-empty
// app names the demo app the API belongs to in its answers.
func newExampleAPI(issuer, clientID, app string, client *http.Client) (http.Handler, error) {
	v, err := apiauth.New(apiauth.Config{
		Issuer:       issuer,
		Audience:     clientID,
		SkipTypCheck: true,
		HTTPClient:   client,
	})
	if err != nil {
		return nil, err
	}
	return v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := apiauth.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		body := map[string]any{
			"message":            "Hello from the example API",
			"subject":            claims.Subject(),
			"scope":              claims["scope"],
			"token_verified":     true,
			"bearer_token_sent":  true,
			"cookie_header_sent": r.Header.Get("Cookie") != "",
			"x_forwarded_for":    r.Header.Get("X-Forwarded-For"),
			"request_id":         r.Header.Get("X-Request-Id"),
			"api_time":           time.Now().UTC().Format(time.RFC3339),
		}
		if app != "" {
			body["message"] = "Hello from app " + app + "'s example API"
			body["app"] = app
			body["audience"] = clientID
		}
		json.NewEncoder(w).Encode(body)
	})), nil
}
