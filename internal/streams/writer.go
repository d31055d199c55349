package streams

import (
	"bufio"
	"mime"
	"net"
	"net/http"
	"strings"
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
	if isEventStream(h.Get("Content-Type")) {
		return true
	}
	return h.Get("Content-Length") == ""
}

// isEventStream reports whether a Content-Type names text/event-stream as
// mime.ParseMediaType reads it. A value without parameters is checked
// without parsing, so the common answer (JSON, say) costs no allocation.
func isEventStream(contentType string) bool {
	mt, params, _ := strings.Cut(contentType, ";")
	if !asciiFoldEqual(strings.TrimSpace(mt), "text/event-stream") {
		// mime.ParseMediaType lower-cases the type, and no other letters
		// lower-case to those of "text/event-stream".
		return false
	}
	if params == "" {
		return true
	}
	// The parameters decide: ParseMediaType rejects some malformed ones.
	ct, _, _ := mime.ParseMediaType(contentType)
	return ct == "text/event-stream"
}

// asciiFoldEqual reports whether s equals lower, a lower-case ASCII string,
// ignoring ASCII case.
func asciiFoldEqual(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
