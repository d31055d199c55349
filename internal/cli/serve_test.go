package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while serve writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeDrainsInFlightRequestsOnShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "slow answer")
	}))
	t.Cleanup(api.Close)
	t.Setenv("CS", "secret")
	p := writeConfig(t, `
server:  { listen: 127.0.0.1:0, public_url: http://localhost:8080, shutdown_timeout: 30s }
oidc:    { issuer: http://127.0.0.1:1, client_id: spa, client_secret: ${CS} }
session: { store: memory }
admin:   { listen: "off" }
routes:  [ { prefix: /api/, upstream: `+api.URL+`, token: none } ]
`)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"serve", "--config", p}, &stdout, &stderr) }()

	addr := regexp.MustCompile(`listening\s+(\S+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s%s", stdout.String(), stderr.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/api/slow", nil)
		req.Header.Set("X-CSRF", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-started
	stop() // SIGTERM: the signal context of main ends the same way
	// The server stops accepting, but the slow upstream call is still let
	// through to its end.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := http.Get(base + "/bff/healthz"); err != nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("server still accepts new requests after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-res
	if r.err != nil || r.status != http.StatusOK || r.body != "slow answer" {
		t.Errorf("in-flight request during shutdown: %d %q %v", r.status, r.body, r.err)
	}
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d after a clean shutdown:\n%s", code, stderr.String())
	}
}
