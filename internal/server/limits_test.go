package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

func TestLimitBody(t *testing.T) {
	const limit = 16
	small, big := strings.Repeat("a", limit), strings.Repeat("a", limit+1)

	// echo reads the whole body; on an error it either returns silently
	// (leaving the answer to LimitBody) or writes its own 400.
	echo := func(ownError bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				if !IsTooLarge(err) {
					t.Errorf("read error %v is not IsTooLarge", err)
				}
				if ownError {
					http.Error(w, "bad body", http.StatusBadRequest)
				}
				return
			}
			w.Write(b)
		})
	}
	tests := []struct {
		name          string
		body          string
		unknownLength bool
		ownError      bool
		want          int
		wantBody      string
	}{
		{"at the limit", small, false, false, http.StatusOK, small},
		{"at the limit, chunked", small, true, false, http.StatusOK, small},
		{"declared too long", big, false, false, http.StatusRequestEntityTooLarge, ""},
		{"chunked too long", big, true, false, http.StatusRequestEntityTooLarge, ""},
		{"chunked too long, handler answers", big, true, true, http.StatusBadRequest, "bad body\n"},
		{"no body", "", false, false, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/bff/x", strings.NewReader(tt.body))
			if tt.unknownLength {
				r.ContentLength = -1
			}
			if tt.body == "" {
				r.Body = http.NoBody
			}
			w := httptest.NewRecorder()
			LimitBody(limit, echo(tt.ownError)).ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d; want %d", w.Code, tt.want)
			}
			if tt.want != http.StatusRequestEntityTooLarge {
				if w.Body.String() != tt.wantBody {
					t.Errorf("body %q; want %q", w.Body, tt.wantBody)
				}
				return
			}
			var e httpx.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error != "request_too_large" {
				t.Errorf("413 body %q: want a JSON error request_too_large (%v)", w.Body, err)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
		})
	}
}

func TestLimitBodyDeclaredTooLongSkipsHandler(t *testing.T) {
	called := false
	h := LimitBody(4, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("12345")))
	if called || w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("called %v, status %d; want the handler skipped and 413", called, w.Code)
	}
}

func TestLimitBodyOffForNonPositive(t *testing.T) {
	h := http.NotFoundHandler()
	for _, n := range []int64{0, -1} {
		w := httptest.NewRecorder()
		LimitBody(n, h).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("a", 1<<20))))
		if w.Code != http.StatusNotFound {
			t.Errorf("LimitBody(%d): status %d; want the handler's 404", n, w.Code)
		}
	}
}

func TestLimitBodyOverRealServer(t *testing.T) {
	// Through a real server the limit also works with the response
	// controller (Unwrap) and a streamed request body.
	srv := httptest.NewServer(LimitBody(8, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through LimitBody: %v", err)
		}
		io.ReadAll(r.Body)
	})))
	defer srv.Close()
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(strings.Repeat("a", 64)))
		pw.Close()
	}()
	resp, err := http.Post(srv.URL, "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d; want 413", resp.StatusCode)
	}
}

func TestIsTooLarge(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{io.ErrUnexpectedEOF, false},
		{&http.MaxBytesError{Limit: 1}, true},
		{errors.Join(errors.New("decode"), &http.MaxBytesError{Limit: 1}), true},
	}
	for _, tt := range tests {
		if got := IsTooLarge(tt.err); got != tt.want {
			t.Errorf("IsTooLarge(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
}

// deadlineRecorder is a ResponseWriter that records write deadlines, as
// http.ResponseController sets them.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadlines []time.Time
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

func TestWriteDeadlineSetsDeadline(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		d    time.Duration
		want []time.Time
	}{
		{30 * time.Second, []time.Time{now.Add(30 * time.Second)}},
		{0, nil},
		{-time.Second, nil},
	}
	for _, tt := range tests {
		w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
		called := false
		writeDeadline(tt.d, func() time.Time { return now }, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })).
			ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if !called {
			t.Errorf("d=%s: handler not called", tt.d)
		}
		if len(w.deadlines) != len(tt.want) || (len(tt.want) == 1 && !w.deadlines[0].Equal(tt.want[0])) {
			t.Errorf("d=%s: deadlines %v; want %v", tt.d, w.deadlines, tt.want)
		}
	}
	// A writer without deadline support is still served.
	w := httptest.NewRecorder()
	WriteDeadline(time.Second, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })).
		ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusTeapot {
		t.Errorf("without deadline support: status %d; want the handler's 418", w.Code)
	}
}

func TestWriteDeadlineCutsSlowWrites(t *testing.T) {
	// The clock puts the deadline in the past, so the first write that
	// reaches the connection fails, without waiting on anything.
	past := func() time.Time { return time.Now().Add(-time.Hour) }
	tests := []struct {
		name    string
		now     func() time.Time
		wantErr bool
	}{
		{"deadline passed", past, true},
		{"deadline ahead", time.Now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeErr := make(chan error, 1)
			body := strings.Repeat("x", 1<<20)
			h := writeDeadline(time.Minute, tt.now, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := io.WriteString(w, body)
				if err == nil {
					err = http.NewResponseController(w).Flush()
				}
				writeErr <- err
			}))
			ln := listen(t)
			logger, _ := testLogger()
			ctx, cancel := context.WithCancel(context.Background())
			done := startRun(ctx, ln, h, Options{Logger: logger})
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			res := get(&http.Client{Transport: &http.Transport{}}, "http://"+ln.Addr().String()+"/")
			err := <-writeErr
			r := <-res
			if tt.wantErr {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("handler write error %v; want os.ErrDeadlineExceeded", err)
				}
				if r.err == nil && r.body == body {
					t.Error("client received the whole body after the deadline")
				}
				return
			}
			if err != nil || r.err != nil || r.body != body {
				t.Errorf("handler error %v, client error %v, body length %d; want the whole body", err, r.err, len(r.body))
			}
		})
	}
}
