package csrf_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse-bff/gatehouse/internal/csrf"
)

func ExampleProtection_Check() {
	p, err := csrf.New(csrf.Options{HeaderName: "X-CSRF", HeaderValue: "1", Origin: "https://app.example"})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodPost, "https://app.example/api/orders", nil)
	r.Header.Set("Origin", "https://app.example")
	fmt.Println(p.Check(r))
	r.Header.Set("X-CSRF", "1")
	fmt.Println(p.Check(r))
	// Output:
	// csrf: anti-forgery header missing or wrong
	// <nil>
}
