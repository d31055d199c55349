package proxy_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/proxy"
)

func Example() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s token=%v", r.URL.Path, r.Header.Get("Authorization") == "Bearer access-token")
	}))
	defer api.Close()
	upstream, _ := url.Parse(api.URL + "/v1/")
	public, _ := url.Parse("https://app.example")

	p, err := proxy.New([]proxy.Route{{
		Prefix:      "/api/",
		Upstream:    upstream,
		StripPrefix: true,
		Timeout:     10 * time.Second,
	}}, proxy.Options{PublicURL: public, CookiePrefix: "__Host-gatehouse"})
	if err != nil {
		log.Fatal(err)
	}

	r := httptest.NewRequest("GET", "/api/orders", nil)
	m, ok := p.Match(r)
	if !ok {
		log.Fatal("no route")
	}
	// The gateway obtains the token for the session; here it is fixed.
	w := httptest.NewRecorder()
	p.Forward(w, r, m, proxy.Credential{Token: "access-token"})
	fmt.Println(w.Code, w.Body.String())
	// Output: 200 /v1/orders token=true
}
