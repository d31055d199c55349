package devprovider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"

	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
)

// A demo runs the provider on a loopback port; the issuer is taken from the
// listener when Options.Issuer is empty.
func ExampleServe() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- devprovider.Serve(ctx, ln, devprovider.Options{
			Clients: []devprovider.Client{{
				ID:                     "gatehouse",
				Secret:                 "demo-secret",
				RedirectURIs:           []string{"http://127.0.0.1:8080/bff/callback"},
				PostLogoutRedirectURIs: []string{"http://127.0.0.1:8080/"},
			}},
		})
	}()

	issuer := "http://" + ln.Addr().String()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		fmt.Println(err)
		return
	}
	var doc struct {
		Issuer string   `json:"issuer"`
		PKCE   []string `json:"code_challenge_methods_supported"`
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	fmt.Println(doc.Issuer == issuer, doc.PKCE)

	cancel()
	fmt.Println(<-done)
	// Output:
	// true [S256]
	// <nil>
}
