package gatehouse_test

import (
	"fmt"
	"net/http"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
)

// A Gateway is an http.Handler: embed it in your own server.
func Example() {
	cfg := &config.Config{
		Server:  config.Server{PublicURL: "https://app.example.com"},
		OIDC:    config.OIDC{Issuer: "https://id.example.com", ClientID: "my-spa", ClientSecret: "from-a-secret-store"},
		Session: config.Session{Store: "memory"},
		Routes:  []config.Route{{Prefix: "/api/", Upstream: "http://127.0.0.1:9001", Token: "user"}},
	}
	cfg.SetDefaults()
	gw, err := gatehouse.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gw.Close()
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: gw}
	_ = srv // srv.ListenAndServe() in a real program
	fmt.Println("ready")
	// Output: ready
}

// New reports every configuration problem at once.
func ExampleNew_invalid() {
	cfg := &config.Config{Server: config.Server{PublicURL: "http://app.example.com"}}
	cfg.SetDefaults()
	_, err := gatehouse.New(cfg)
	fmt.Println(err != nil)
	// Output: true
}
