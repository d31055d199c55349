package httpx

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// Recorder wraps a ResponseWriter to remember the final status and count
// the body bytes of a response, for access logs and metrics. It keeps
// Flush, Hijack and ReadFrom working, and Unwrap lets
// http.ResponseController reach the writer beneath.
type Recorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

// NewRecorder wraps w.
func NewRecorder(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// RecorderFor returns w itself when it is a Recorder nothing was written
// through yet (an access log's, say), else a new Recorder wrapping w.
func RecorderFor(w http.ResponseWriter) *Recorder {
	if r, ok := w.(*Recorder); ok && r.status == 0 && r.bytes == 0 && !r.hijacked {
		return r
	}
	return NewRecorder(w)
}

// Bytes returns the body bytes written so far.
func (w *Recorder) Bytes() int64 { return w.bytes }

// StatusCode returns the final status: 200 when nothing was written, 101
// for a hijacked connection. Informational responses other than 101 do
// not count.
func (w *Recorder) StatusCode() int {
	switch {
	case w.status != 0:
		return w.status
	case w.hijacked:
		return http.StatusSwitchingProtocols
	}
	return http.StatusOK
}

func (w *Recorder) WriteHeader(code int) {
	// Informational responses other than 101 precede the final status.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *Recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's sendfile path for file responses.
func (w *Recorder) ReadFrom(src io.Reader) (int64, error) {
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

func (w *Recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *Recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides every method but Write, so io.Copy cannot recurse into
// ReadFrom.
type writerOnly struct{ io.Writer }
