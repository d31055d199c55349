package streams

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store"
)

// records is a session store of keys that are live, or failing.
type records struct {
	mu   sync.Mutex
	live map[string]bool
	err  error
}

func (r *records) Get(_ context.Context, key string) (*store.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	if !r.live[key] {
		return nil, store.ErrNotFound
	}
	return &store.Record{Key: key, ExpiresAt: time.Now().Add(time.Hour)}, nil
}

func (r *records) set(key string, live bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[key], r.err = live, err
}

// closes counts the registry's OnClose calls by reason.
type closes struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *closes) add(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[reason]++
}

func (c *closes) get(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[reason]
}

func newRegistry(t *testing.T, interval time.Duration) (*Registry, *records, *closes) {
	t.Helper()
	recs := &records{live: map[string]bool{}}
	cl := &closes{n: map[string]int{}}
	r, err := New(Options{Records: recs, Interval: interval, OnClose: cl.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, recs, cl
}

var sess = &session.Session{Key: "k1", AbsoluteExpiry: time.Now().Add(time.Hour), LastSeen: time.Now()}

// server serves handler for session sess through r.
func server(t *testing.T, r *Registry, handler http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithCancelCause(req.Context())
		defer cancel(nil)
		req = req.WithContext(ctx)
		c := r.Track(w, req, cancel, "", sess, time.Hour)
		defer c.Done()
		handler(c, req)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOrdinaryResponseIsNotCut(t *testing.T) {
	r, _, cl := newRegistry(t, time.Hour)
	release := make(chan struct{})
	started := make(chan struct{})
	srv := server(t, r, func(w http.ResponseWriter, req *http.Request) {
		close(started)
		<-release
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	})
	go func() {
		<-started
		r.End(context.Background(), []string{"k1"}, "logout")
		close(release)
	}()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "ok" {
		t.Errorf("an ordinary response of a session ended meanwhile: %q, %v; want it whole", body, err)
	}
	if n := cl.get("logout"); n != 0 {
		t.Errorf("%d streams counted closed for an ordinary response", n)
	}
}

func TestCallThatBecomesAStreamAfterTheEndClosesAtOnce(t *testing.T) {
	r, _, cl := newRegistry(t, time.Hour)
	release := make(chan struct{})
	started := make(chan struct{})
	srv := server(t, r, func(w http.ResponseWriter, req *http.Request) {
		close(started)
		<-release
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-req.Context().Done()
		if !errors.Is(context.Cause(req.Context()), errSessionEnded) {
			t.Errorf("stream context ended by %v, want the session's end", context.Cause(req.Context()))
		}
	})
	go func() {
		<-started
		r.End(context.Background(), []string{"k1"}, "logout")
		close(release)
	}()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := cl.get("logout"); n != 1 {
		t.Errorf("closed for logout %d times, want 1", n)
	}
}

// openStream opens an event stream through srv and returns a channel
// that is closed when the client sees its end.
func openStream(t *testing.T, srv *httptest.Server) chan struct{} {
	t.Helper()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data:") {
		t.Fatalf("first line %q, %v", line, err)
	}
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, br)
		resp.Body.Close()
		close(done)
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return done
}

func sse(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Write([]byte("data: hi\n\n"))
	w.(http.Flusher).Flush()
	<-req.Context().Done()
}

func TestRecheckClosesStreamsOfGoneSessionsOnly(t *testing.T) {
	r, recs, cl := newRegistry(t, 50*time.Millisecond)
	recs.set("k1", true, nil)
	srv := server(t, r, sse)
	done := openStream(t, srv)

	// A store that cannot answer leaves the stream open.
	recs.set("k1", true, errors.New("store down"))
	time.Sleep(200 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("a store failure closed the stream")
	default:
	}
	if r.Open() != 1 {
		t.Errorf("Open() = %d, want 1", r.Open())
	}
	// The session is gone, nobody said so: the re-check closes it.
	recs.set("k1", false, nil)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the re-check did not close a stream whose session is gone")
	}
	if n := cl.get("ended"); n != 1 {
		t.Errorf("closed as ended %d times, want 1", n)
	}
}

func TestLabelKeepsMetricLabelsBounded(t *testing.T) {
	for in, want := range map[string]string{"logout": "logout", "max_per_user": "max_per_user", "": "remote", "Logout": "remote",
		"a b": "remote", strings.Repeat("a", 33): "remote"} {
		if got := label(in); got != want {
			t.Errorf("label(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCallsUnderOneKey: calls tracked under one session key finish in any
// order, and an end closes exactly the streams still open.
func TestCallsUnderOneKey(t *testing.T) {
	r, _, cl := newRegistry(t, time.Hour)
	req := httptest.NewRequest("GET", "/api/events", nil)
	var calls []*Call
	var causes []func() error
	for range 4 {
		ctx, cancel := context.WithCancelCause(req.Context())
		t.Cleanup(func() { cancel(nil) })
		c := r.Track(httptest.NewRecorder(), req.WithContext(ctx), cancel, "", sess, time.Hour)
		c.Header().Set("Content-Type", "text/event-stream")
		c.WriteHeader(http.StatusOK)
		calls = append(calls, c)
		causes = append(causes, func() error { return context.Cause(ctx) })
	}
	if n := r.Open(); n != 4 {
		t.Fatalf("Open = %d, want 4", n)
	}
	calls[1].Done() // middle
	calls[3].Done() // first in the list (tracked last)
	calls[1].Done() // twice: no effect
	if n := r.Open(); n != 2 {
		t.Fatalf("Open after two finished = %d, want 2", n)
	}
	r.End(t.Context(), []string{sess.Key}, "logout")
	for i, cause := range causes {
		ended := errors.Is(cause(), errSessionEnded)
		if want := i == 0 || i == 2; ended != want {
			t.Errorf("call %d: cut %v, want %v", i, ended, want)
		}
	}
	if cl.get("logout") != 2 || cl.get("done") != 2 {
		t.Errorf("closes: logout %d, done %d; want 2 and 2", cl.get("logout"), cl.get("done"))
	}
	calls[0].Done()
	calls[2].Done()
	if n := r.Open(); n != 0 {
		t.Fatalf("Open at the end = %d, want 0", n)
	}
	r.mu.Lock()
	left := len(r.byKey)
	r.mu.Unlock()
	if left != 0 {
		t.Errorf("%d keys left registered", left)
	}
}
