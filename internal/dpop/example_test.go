package dpop_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
)

func Example() {
	key, err := dpop.NewKey()
	if err != nil {
		panic(err)
	}
	// The OAuth client's HTTP client wraps its transport; token requests
	// made with a context carrying the key get a DPoP header (and nonce
	// retries), other requests pass through.
	client := &http.Client{Transport: dpop.Transport(http.DefaultTransport)}
	ctx := dpop.WithKey(context.Background(), key)
	fmt.Println(client.Transport != nil, dpop.KeyFrom(ctx) == key)

	// A resource request proof binds the access token with `ath`.
	now := time.Now()
	proof, err := key.Proof("GET", "https://api.example.test/orders?page=2", "access-token", "", now)
	if err != nil {
		panic(err)
	}
	jkt, err := dpop.Verify(proof, "GET", "https://api.example.test/orders", "access-token", now, time.Minute)
	fmt.Println(err == nil, jkt == key.Thumbprint())
	// Output:
	// true true
	// true true
}
