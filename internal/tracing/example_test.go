package tracing_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gatehouse-bff/gatehouse/internal/tracing"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// With no endpoint, tracing is off and the wrappers return what they are
// given.
func Example_disabled() {
	tr, err := tracing.New(context.Background(), tracing.Options{})
	if err != nil {
		panic(err)
	}
	defer tr.Shutdown(context.Background())
	fmt.Println(tr.Enabled(), tr.Transport("upstream", http.DefaultTransport) == http.DefaultTransport)
	// Output: false true
}

// Wrapping a gateway: the handler around everything, the transports of
// outbound calls, and the session store.
func Example() {
	exp := tracetest.NewInMemoryExporter() // production: Options.OTLPEndpoint
	tr, err := tracing.New(context.Background(), tracing.Options{Exporter: exp, ServiceName: "gatehouse"})
	if err != nil {
		panic(err)
	}
	defer tr.Shutdown(context.Background())

	store := tr.Store(memstore.New(memstore.Options{}))
	defer store.Close()
	providerClient := &http.Client{Transport: tr.Transport("provider", nil)}
	upstreams := tr.Transport("upstream", http.DefaultTransport)
	handler := tr.Handler("gatehouse", http.NotFoundHandler())
	_, _, _ = providerClient, upstreams, handler

	fmt.Println(tr.Enabled())
	// Output: true
}
