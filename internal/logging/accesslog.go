package logging

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// AccessLog wraps next so that every request is logged as one line,
// "request", after next returns, with the attributes request_id, method,
// path (never the query, which can carry an authorization code or state),
// status, duration and bytes (response body bytes written). Requests
// answered with a 5xx status are logged at level Warn, the others at Info.
//
// The request id is the one httpx.RequestID finds in the request context
// or, when the id is assigned further in (as Gateway.ServeHTTP does), the
// X-Request-Id response header. A connection hijacked for a protocol
// upgrade is logged with status 101 unless the handler wrote another one;
// its bytes count only what went through the ResponseWriter.
//
// The ResponseWriter given to next implements http.Flusher, http.Hijacker
// and io.ReaderFrom, and has an Unwrap method, so streaming responses and
// WebSocket upgrades work through it.
func AccessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		ctx := r.Context()
		id := httpx.RequestID(ctx)
		if id == "" {
			id = w.Header().Get("X-Request-Id")
		}
		status := rec.statusCode()
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		logger.LogAttrs(ctx, level, "request",
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes", rec.bytes),
		)
	})
}

// recorder remembers the status and counts the body bytes of a response.
type recorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (w *recorder) statusCode() int {
	switch {
	case w.status != 0:
		return w.status
	case w.hijacked:
		return http.StatusSwitchingProtocols
	}
	return http.StatusOK
}

func (w *recorder) WriteHeader(code int) {
	// Informational responses other than 101 precede the final status.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's sendfile path for file responses.
func (w *recorder) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, src)
	}
	w.bytes += n
	return n, err
}

func (w *recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides every method but Write, so io.Copy cannot recurse into
// ReadFrom.
type writerOnly struct{ io.Writer }
