package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/server"
)

func ExampleRun() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		fmt.Println(err)
		return
	}
	err = server.Run(ctx, ln, http.NotFoundHandler(), server.Options{
		TLSCert: "/etc/gatehouse/tls/cert.pem",
		TLSKey:  "/etc/gatehouse/tls/key.pem",
		Drain:   30 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
	}
}

func ExampleLimitBody() {
	h := server.WriteDeadline(30*time.Second, server.LimitBody(8, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); server.IsTooLarge(err) {
			return // LimitBody answers 413
		}
		io.WriteString(w, "ok")
	})))
	for _, body := range []string{"small", "far too large"} {
		r := httptest.NewRequest(http.MethodPost, "/bff/backchannel", strings.NewReader(body))
		r.ContentLength = -1 // as for a chunked upload
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// 200
	// 413
}
