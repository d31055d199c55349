package metrics_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse-bff/gatehouse/internal/metrics"
)

func ExampleMetrics_Middleware() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		panic(err)
	}
	route := func(r *http.Request) string {
		if strings.HasPrefix(r.URL.Path, "/bff/") {
			return "bff"
		}
		return "frontend"
	}
	h := m.Middleware(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/bff/user", nil))

	n, _ := testutil.GatherAndCount(reg, "gatehouse_http_requests_total")
	fmt.Println("request series:", n)
	// Output: request series: 1
}
