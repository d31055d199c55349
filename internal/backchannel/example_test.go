package backchannel_test

import (
	"log"
	"net/http"

	"github.com/gatehouse-bff/gatehouse/internal/backchannel"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

// The provider is registered with backchannel_logout_uri
// https://app.example/bff/backchannel.
func Example() {
	store := memstore.New(memstore.Options{})
	defer store.Close()
	h, err := backchannel.New(backchannel.Options{
		Provider: provider.NewSource(provider.Options{
			Issuer:       "https://op.example",
			ClientID:     "gatehouse",
			ClientSecret: "from-a-secret-file",
		}, 0),
		Store: store,
		Once:  store,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/bff/backchannel", h)
}
