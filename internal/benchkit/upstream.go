package benchkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Body is the upstream's answer to an API GET: about 200 bytes of JSON,
// the same as the repository's Go benchmarks use.
var Body = `{"orders":[` + strings.Repeat(`{"id":1234,"total":"19.90","state":"paid"},`, 4) + `{"id":1235,"total":"5.00","state":"open"}],"page":2}`

// CaptureHeader, sent with a request, makes the upstream remember the
// headers that request arrived with (see Upstream.Captured).
const CaptureHeader = "X-Bench-Capture"

// Upstream is the API behind the proxies. It answers every path with Body,
// except /api/events, a server-sent event stream of n events ?n= (default
// 5) one every ?every= (default 100ms).
type Upstream struct {
	URL string
	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	captured http.Header
}

// StartUpstream serves the upstream on a loopback port.
func StartUpstream() (*Upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("benchkit: upstream: %w", err)
	}
	u := &Upstream{URL: "http://" + ln.Addr().String(), ln: ln}
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	go u.srv.Serve(ln)
	return u, nil
}

func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(CaptureHeader) != "" {
		u.mu.Lock()
		u.captured = r.Header.Clone()
		u.mu.Unlock()
	}
	if r.URL.Path == "/api/events" {
		u.events(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, Body)
}

func (u *Upstream) events(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	n = min(max(n, 1), 1000)
	every, _ := time.ParseDuration(r.URL.Query().Get("every"))
	every = min(max(every, time.Millisecond), 10*time.Second)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	t := time.NewTicker(every)
	defer t.Stop()
	for i := range n {
		fmt.Fprintf(w, "id: %d\ndata: {\"tick\":%d}\n\n", i, i)
		if rc.Flush() != nil {
			return
		}
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
}

// Captured returns the headers of the last request that carried
// CaptureHeader, or nil.
func (u *Upstream) Captured() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.captured.Clone()
}

// Close stops the upstream.
func (u *Upstream) Close() error { return u.srv.Close() }
