package frontend_test

import (
	"log"
	"net/http"

	"github.com/gatehouse-bff/gatehouse/internal/frontend"
)

func ExampleNew() {
	spa, err := frontend.New(frontend.Options{
		StaticDir: "/srv/app/dist",
		Headers:   map[string]string{"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", spa)
}
