package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
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

func testLogger() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

// closeSignalListener reports when the server closes it, which is the first
// thing a graceful shutdown does.
type closeSignalListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeSignalListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

func listen(t *testing.T) *closeSignalListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &closeSignalListener{Listener: ln, closed: make(chan struct{})}
}

// startRun runs Run in the background and returns its result channel.
func startRun(ctx context.Context, ln net.Listener, h http.Handler, opts Options) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Run(ctx, ln, h, opts) }()
	return done
}

// slowHandler blocks every request until release is closed.
type slowHandler struct {
	entered chan struct{}
	release chan struct{}
}

func newSlowHandler() *slowHandler {
	return &slowHandler{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (h *slowHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.entered <- struct{}{}
	<-h.release
	io.WriteString(w, "done")
}

type result struct {
	status int
	body   string
	err    error
}

func get(client *http.Client, url string) <-chan result {
	c := make(chan result, 1)
	go func() {
		resp, err := client.Get(url)
		if err != nil {
			c <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		c <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	return c
}

func TestRunGracefulShutdownFinishesInFlightRequest(t *testing.T) {
	ln := listen(t)
	h := newSlowHandler()
	logger, _ := testLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startRun(ctx, ln, h, Options{Drain: time.Hour, Logger: logger})

	client := &http.Client{Transport: &http.Transport{}}
	res := get(client, "http://"+ln.Addr().String()+"/")
	<-h.entered
	cancel()
	<-ln.closed // shutdown has started

	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("a new connection was accepted after shutdown started")
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before the in-flight request finished", err)
	default:
	}

	close(h.release)
	r := <-res
	if r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Errorf("in-flight request: status %d body %q err %v; want 200 \"done\"", r.status, r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v; want nil after a clean shutdown", err)
	}
}

func TestRunDrainTimeoutClosesConnections(t *testing.T) {
	ln := listen(t)
	h := newSlowHandler()
	defer close(h.release)
	logger, _ := testLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The handler is released only after Run returned, so the drain
	// always runs out, however short or long it is.
	done := startRun(ctx, ln, h, Options{Drain: time.Nanosecond, Logger: logger})

	client := &http.Client{Transport: &http.Transport{}}
	res := get(client, "http://"+ln.Addr().String()+"/")
	<-h.entered
	cancel()

	err := <-done
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v; want an error wrapping context.DeadlineExceeded", err)
	}
	if r := <-res; r.err == nil {
		t.Errorf("in-flight request got status %d; want its connection closed", r.status)
	}
}

func TestRunReturnsServeError(t *testing.T) {
	ln := listen(t)
	ln.Listener.Close() // Accept fails at once
	err := Run(context.Background(), ln, http.NotFoundHandler(), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "server: ") {
		t.Errorf("Run on a closed listener = %v; want a server: error", err)
	}
}

func TestRunRejectsHalfTLSConfig(t *testing.T) {
	for _, o := range []Options{{TLSCert: "cert.pem"}, {TLSKey: "key.pem"}} {
		ln := listen(t)
		if err := Run(context.Background(), ln, http.NotFoundHandler(), o); err == nil {
			t.Errorf("Run(%+v) = nil; want an error", o)
		}
		select {
		case <-ln.closed:
		default:
			t.Errorf("Run(%+v) left the listener open", o)
		}
	}
}

func TestRunOversizedHeadersGet431(t *testing.T) {
	tests := []struct {
		name   string
		header int
		want   int
	}{
		{"within limit", 512, http.StatusOK},
		// net/http allows some slack above MaxHeaderBytes; 64 KiB is far past it.
		{"over limit", 64 << 10, http.StatusRequestHeaderFieldsTooLarge},
	}
	ln := listen(t)
	logger, _ := testLogger()
	ctx, cancel := context.WithCancel(context.Background())
	done := startRun(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Options{MaxHeaderBytes: 1 << 10, Logger: logger})
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Write in the background: the server may answer and close
			// before it has read the whole request.
			go fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\nConnection: close\r\n\r\n", strings.Repeat("a", tt.header))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d; want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
