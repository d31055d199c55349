package server

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// WriteDeadline returns a handler that gives each request d to write its
// response, counted from when the request reaches it, through
// http.ResponseController.SetWriteDeadline. A write after the deadline
// fails and the connection is closed. d <= 0 returns next unchanged.
//
// It is meant for handlers that answer by themselves; proxied routes and
// streams must not be wrapped, which is why the server as a whole has no
// write timeout. A handler below may still move or clear the deadline with
// its own ResponseController.
func WriteDeadline(d time.Duration, next http.Handler) http.Handler {
	return writeDeadline(d, time.Now, next)
}

func writeDeadline(d time.Duration, now func() time.Time, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A writer without deadline support (a test recorder, a wrapper
		// without Unwrap) is served without one rather than refused.
		_ = http.NewResponseController(w).SetWriteDeadline(now().Add(d))
		next.ServeHTTP(w, r)
	})
}

// IsTooLarge reports whether err comes from reading past a body limit set
// by LimitBody or http.MaxBytesReader.
func IsTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// LimitBody returns a handler that lets next read at most n bytes of a
// request body. A request that declares a longer Content-Length gets 413
// without reaching next. For a body of unknown length, reading past n gives
// next an error for which IsTooLarge reports true; if next then returns
// without writing a response, the client gets 413 with a JSON error body.
// n <= 0 returns next unchanged.
func LimitBody(n int64, next http.Handler) http.Handler {
	if n <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			tooLarge(w, r)
			return
		}
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		// MaxBytesReader gets the server's own writer, which it uses to
		// close the connection after the limit is hit.
		body := &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, n)}
		r2 := *r
		r2.Body = body
		tw := &trackingWriter{ResponseWriter: w}
		next.ServeHTTP(tw, &r2)
		if body.exceeded.Load() && !tw.wrote.Load() {
			tooLarge(w, r)
		}
	})
}

func tooLarge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	httpx.JSONError(w, r, http.StatusRequestEntityTooLarge, "request_too_large", "The request body is too large.")
}

// limitedBody records whether a read ran past the limit.
type limitedBody struct {
	io.ReadCloser
	exceeded atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && IsTooLarge(err) {
		b.exceeded.Store(true)
	}
	return n, err
}

// trackingWriter records whether a response has been started. Unwrap keeps
// http.ResponseController working through it.
type trackingWriter struct {
	http.ResponseWriter
	wrote atomic.Bool
}

func (w *trackingWriter) WriteHeader(code int) {
	// 1xx informational responses do not start the final response.
	if code >= 200 {
		w.wrote.Store(true)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(p []byte) (int, error) {
	w.wrote.Store(true)
	return w.ResponseWriter.Write(p)
}

// Flush sends buffered data, as http.Flusher.
func (w *trackingWriter) Flush() {
	w.wrote.Store(true)
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
