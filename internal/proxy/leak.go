package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
)

// errLeak reports that an upstream response carried the access token.
var errLeak = errors.New("proxy: upstream response contains the access token")

// minDirectRead is the smallest caller buffer, beyond the token length, the
// scanner reads into directly; smaller reads go through its own buffer.
const minDirectRead = 4096

// leakScanner wraps an upstream response body and fails with errLeak
// instead of returning bytes that would complete the token. It holds back
// only the longest tail of what it read that is a proper prefix of the token,
// so a token split across reads is still found, and streams whose chunks do
// not end in a possible token start (server-sent events end in "\n") are not
// delayed. Not safe for concurrent use; httputil.ReverseProxy reads and
// closes a body from one goroutine.
type leakScanner struct {
	body  io.ReadCloser
	res   *http.Response // for its trailers
	token string
	found *bool // set when the token is found

	hold []byte // carried-over tail, len < len(token); made when first needed
	buf  []byte // own buffer for small caller reads
	out  []byte // pending bytes of buf not yet returned
	err  error  // sticky error
}

// init makes s scan res's body for token, setting *found on a hit. It
// allocates nothing: the token is searched as a string, and the hold
// buffer is made only when a read ends in a possible start of the token.
func (s *leakScanner) init(res *http.Response, token string, found *bool) {
	*s = leakScanner{body: res.Body, res: res, token: token, found: found}
}

func (s *leakScanner) Read(p []byte) (int, error) {
	if len(s.out) > 0 {
		n := copy(p, s.out)
		s.out = s.out[n:]
		return n, nil
	}
	if s.err != nil {
		return 0, s.err
	}
	if len(p) >= len(s.token)+minDirectRead {
		return s.fill(p)
	}
	if s.buf == nil {
		s.buf = make([]byte, len(s.token)+minDirectRead)
	}
	n, err := s.fill(s.buf)
	s.out = s.buf[:n]
	m := copy(p, s.out)
	s.out = s.out[m:]
	if len(s.out) > 0 {
		return m, nil // the sticky error follows the pending bytes
	}
	return m, err
}

// fill reads from the body into dst, after the held-back tail, and returns
// how many bytes at the start of dst may be released.
func (s *leakScanner) fill(dst []byte) (int, error) {
	for {
		h := copy(dst, s.hold)
		n, err := s.body.Read(dst[h:])
		data := dst[:h+n]
		if containsToken(data, s.token) {
			return 0, s.hit()
		}
		if err != nil {
			if err == io.EOF && s.trailersLeak() {
				return 0, s.hit()
			}
			s.hold = s.hold[:0]
			s.err = err
			return len(data), err
		}
		k := heldSuffix(data, s.token)
		if k > 0 && s.hold == nil {
			s.hold = make([]byte, 0, len(s.token)-1)
		}
		s.hold = append(s.hold[:0], data[len(data)-k:]...)
		if rel := len(data) - k; rel > 0 || n == 0 {
			return rel, nil
		}
	}
}

func (s *leakScanner) hit() error {
	s.err = errLeak
	s.hold = s.hold[:0]
	*s.found = true
	return errLeak
}

// Close closes the body. Trailers arrive with the end of the body; any that
// carry the token are removed so they are never forwarded.
func (s *leakScanner) Close() error {
	err := s.body.Close()
	if s.err != errLeak && s.trailersLeak() {
		s.hit()
	}
	return err
}

// trailersLeak removes trailers carrying the token and reports whether there
// were any.
func (s *leakScanner) trailersLeak() bool {
	found := false
	for k, vs := range s.res.Trailer {
		if valuesContain(vs, s.token) {
			delete(s.res.Trailer, k)
			found = true
		}
	}
	return found
}

// containsToken reports whether data contains token, as bytes.Contains
// would, without converting either.
func containsToken(data []byte, token string) bool {
	if len(token) == 0 {
		return true
	}
	for len(data) >= len(token) {
		i := bytes.IndexByte(data[:len(data)-len(token)+1], token[0])
		if i < 0 {
			return false
		}
		if string(data[i:i+len(token)]) == token {
			return true
		}
		data = data[i+1:]
	}
	return false
}

// heldSuffix returns the length of the longest suffix of data that is a
// proper prefix of token.
func heldSuffix(data []byte, token string) int {
	i := max(len(data)-(len(token)-1), 0)
	for i < len(data) {
		j := bytes.IndexByte(data[i:], token[0])
		if j < 0 {
			return 0
		}
		i += j
		if rest := data[i:]; len(rest) <= len(token) && token[:len(rest)] == string(rest) {
			return len(data) - i
		}
		i++
	}
	return 0
}

// headerContains reports whether any value of h contains token.
func headerContains(h http.Header, token string) bool {
	for _, vs := range h {
		if valuesContain(vs, token) {
			return true
		}
	}
	return false
}

func valuesContain(vs []string, token string) bool {
	for _, v := range vs {
		if strings.Contains(v, token) {
			return true
		}
	}
	return false
}

// guardWriter holds back the response status until the first body byte or
// flush, so that a leak found in the first read can still be answered with
// an error status instead of the upstream's.
type guardWriter struct {
	w         http.ResponseWriter
	status    int
	committed bool
	// eager is set for event streams, whose headers are sent on the first
	// flush even before any body byte; other responses keep them until the
	// first byte, so more leaks can be answered with a clean 502.
	eager bool
}

func (g *guardWriter) Header() http.Header { return g.w.Header() }

func (g *guardWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		g.w.WriteHeader(code) // informational responses pass through
		return
	}
	if g.status == 0 {
		g.status = code
	}
}

func (g *guardWriter) commit() {
	if g.committed {
		return
	}
	g.committed = true
	if g.status == 0 {
		g.status = http.StatusOK
	}
	g.w.WriteHeader(g.status)
}

func (g *guardWriter) Write(b []byte) (int, error) {
	g.commit()
	return g.w.Write(b)
}

// FlushError sends the held status and flushes. Before the first body byte
// it does nothing unless the response is an event stream.
func (g *guardWriter) FlushError() error {
	if !g.committed && !g.eager {
		return nil
	}
	g.commit()
	return http.NewResponseController(g.w).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (g *guardWriter) Unwrap() http.ResponseWriter { return g.w }
