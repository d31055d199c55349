package demo

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider/devprovidertest"
)

// The example API answers only requests whose access token the
// development provider issued to the demo's client.
func TestExampleAPIVerifiesTokens(t *testing.T) {
	_, op := devprovidertest.NewTestServer(t, devprovider.Options{
		Clients: []devprovider.Client{
			{ID: "gatehouse-demo", Secret: "s1", GrantTypes: []string{devprovider.GrantClientCredentials}},
			{ID: "someone-else", Secret: "s2", GrantTypes: []string{devprovider.GrantClientCredentials}},
		},
	})
	token := func(id, secret string) string {
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: op.URL + "/oauth/token"}
		tok, err := cc.Token(context.WithValue(t.Context(), oauth2.HTTPClient, op.Client()))
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	api, err := newExampleAPI(op.URL, "gatehouse-demo", "", op.Client())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, authorization string
		status              int
	}{
		{"the demo client's token", "Bearer " + token("gatehouse-demo", "s1"), 200},
		{"another client's token", "Bearer " + token("someone-else", "s2"), 401},
		{"no token", "", 401},
		{"not a token", "Bearer made-up", 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://api.test/api/whoami", nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			w := httptest.NewRecorder()
			api.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status != 200 {
				return
			}
			var body map[string]any
			if err := json.NewDecoder(w.Body).Decode(&body); err != nil || body["subject"] != "gatehouse-demo" {
				t.Errorf("body %v (%v), want the token's subject", body, err)
			}
		})
	}
}
