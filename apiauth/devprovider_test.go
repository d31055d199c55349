package apiauth_test

import (
	"context"
	"net/http"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-bff/gatehouse/apiauth"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
	"github.com/gatehouse-bff/gatehouse/internal/devprovider/devprovidertest"
)

// The in-process provider (zitadel/oidc's op) issues JWT access tokens
// with typ "JWT", not at+jwt, and aud the client id, as Keycloak and
// Entra ID do too: apiauth refuses them by default (RFC 9068 §4) and
// accepts them with SkipTypCheck.
func TestInProcessProviderTokens(t *testing.T) {
	_, srv := devprovidertest.NewTestServer(t, devprovider.Options{
		Clients: []devprovider.Client{{
			ID: "orders-worker", Secret: "worker-secret",
			GrantTypes: []string{devprovider.GrantClientCredentials},
		}},
	})
	cc := clientcredentials.Config{
		ClientID: "orders-worker", ClientSecret: "worker-secret",
		TokenURL: srv.URL + "/oauth/token", Scopes: []string{"orders:read"},
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client credentials grant: %v", err)
	}

	for _, tt := range []struct {
		name    string
		skipTyp bool
		status  int
	}{
		{name: "typ JWT refused by default", status: 401},
		{name: "accepted with SkipTypCheck", skipTyp: true, status: 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := apiauth.New(apiauth.Config{Issuer: srv.URL, Audience: "orders-worker", SkipTypCheck: tt.skipTyp, HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			got := serve(v, bearer("http://api.test/orders", tok.AccessToken), apiauth.RequireScope("orders:read"))
			if got.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", got.status, tt.status, got.body)
			}
			if tt.status == 200 && got.sub != "orders-worker" {
				t.Errorf("subject %q, want the client id", got.sub)
			}
		})
	}

	// Another audience is refused even so.
	v, _ := apiauth.New(apiauth.Config{Issuer: srv.URL, Audience: "billing", SkipTypCheck: true, HTTPClient: srv.Client()})
	if got := serve(v, bearer("http://api.test/", tok.AccessToken)); got.status != http.StatusUnauthorized {
		t.Errorf("token for orders-worker at an API with another audience: %d, want 401", got.status)
	}
}
