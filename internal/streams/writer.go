package streams

import (
	"bufio"
	"mime"
	"net"
	"net/http"
)

// writer watches a tracked call's response for the moment it becomes a
// stream.
type writer struct {
	http.ResponseWriter
	reg   *Registry
	e     *entry
	head  bool
	wrote bool
}

func (w *writer) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		if streaming(code, w.Header(), w.head) {
			w.reg.opened(w.e, nil)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *writer) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Hijack hands over the browser's connection for an upgrade, which makes
// the call a stream: closing it closes that connection.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.wrote = true
		w.reg.opened(w.e, conn)
	}
	return conn, brw, err
}

// FlushError flushes the underlying writer.
func (w *writer) FlushError() error {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is FlushError for callers that need an http.Flusher.
func (w *writer) Flush() { w.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// streaming reports whether a response with this status and header stays
// open: a successful event stream, or a successful body of unknown length
// (chunked, or closed by the upstream when done).
func streaming(code int, h http.Header, head bool) bool {
	if code < 200 || code > 299 || code == http.StatusNoContent || head {
		return false
	}
	if ct, _, _ := mime.ParseMediaType(h.Get("Content-Type")); ct == "text/event-stream" {
		return true
	}
	return h.Get("Content-Length") == ""
}
