package benchkit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/proxy"
	"github.com/gatehouse-bff/gatehouse/internal/server"
)

// childEnv carries a ChildSpec to a re-executed program.
const childEnv = "GATEHOUSE_BENCH_CHILD"

// Roles of a child process.
const (
	RoleGatehouse = "gatehouse"
	RoleBare      = "bare"
)

// ChildSpec says what a child process serves: a Gatehouse (Gateway) or a
// bare httputil.ReverseProxy to Upstream.
type ChildSpec struct {
	Role     string
	Gateway  GatewayOptions
	Upstream string
}

// ChildStats are a child's counters since it started.
type ChildStats struct {
	Requests   int64  // requests its handler finished
	Mallocs    uint64 // runtime.MemStats.Mallocs
	TotalAlloc uint64 // bytes allocated
	HeapAlloc  uint64
	NumGC      uint32
	Goroutines int
}

// RunChildIfAsked serves as a child process when this program was started
// by StartChild, and then exits; otherwise it returns at once. Programs
// call it first thing in main (and smoke tests in TestMain).
func RunChildIfAsked() {
	raw, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	if err := runChild(raw); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// bareHeaders is what the bare proxy sets and removes on the upstream
// request, so that the upstream sees the headers Gatehouse sends.
type bareHeaders struct {
	Set map[string]string
	Del []string
}

func runChild(raw string) error {
	var spec ChildSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return err
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return err
	}
	ctl, err := net.FileListener(os.NewFile(4, "control"))
	if err != nil {
		return err
	}
	var (
		served  atomic.Int64
		handler http.Handler
		bare    atomic.Pointer[bareHeaders]
		ready   = map[string]string{"role": spec.Role}
		closeGW func() error
	)
	bare.Store(&bareHeaders{})
	switch spec.Role {
	case RoleGatehouse:
		spec.Gateway.Wrap = func(h http.Handler) http.Handler { return countRequests(&served, h) }
		g, err := StartGateway(spec.Gateway, ln, nil)
		if err != nil {
			return err
		}
		closeGW = g.Close
		ready["url"], ready["cookie"] = g.URL, g.CookieName
	case RoleBare:
		target, err := url.Parse(spec.Upstream)
		if err != nil {
			return err
		}
		handler = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.SetXForwarded()
				h := bare.Load()
				for k, v := range h.Set {
					pr.Out.Header[k] = []string{v}
				}
				for _, k := range h.Del {
					delete(pr.Out.Header, k)
				}
			},
			Transport: proxy.NewTransport(),
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go server.Run(ctx, ln, countRequests(&served, handler), server.Options{Drain: time.Second})
		ready["url"] = "http://" + ln.Addr().String()
	default:
		return fmt.Errorf("unknown role %q", spec.Role)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(ChildStats{
			Requests: served.Load(), Mallocs: ms.Mallocs, TotalAlloc: ms.TotalAlloc,
			HeapAlloc: ms.HeapAlloc, NumGC: ms.NumGC, Goroutines: runtime.NumGoroutine(),
		})
	})
	mux.HandleFunc("POST /bare-headers", func(w http.ResponseWriter, r *http.Request) {
		var h bareHeaders
		if err := json.NewDecoder(r.Body).Decode(&h); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		bare.Store(&h)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go http.Serve(ctl, mux)

	line, _ := json.Marshal(ready)
	fmt.Println(string(line))
	// The parent holds our stdin: when it goes away, so do we.
	io.Copy(io.Discard, os.Stdin)
	if closeGW != nil {
		return closeGW()
	}
	return nil
}

// countRequests counts the requests next finishes.
func countRequests(n *atomic.Int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		n.Add(1)
	})
}

// Child is a running child process.
type Child struct {
	URL, Cookie string
	cmd         *exec.Cmd
	stdin       io.Closer
	ctl         string
	client      *http.Client
	waitOnce    sync.Once
	waitErr     error
}

// StartChild re-executes this program as a child serving spec on ln.
func StartChild(ctx context.Context, spec ChildSpec, ln net.Listener) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctlLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ctlLn.Close()
	defer ln.Close()
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cf, err := ctlLn.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$") // the flag keeps a test binary quiet; the child never parses flags
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	cmd.ExtraFiles = []*os.File{lf, cf}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &Child{cmd: cmd, stdin: stdin, ctl: "http://" + ctlLn.Addr().String(), client: &http.Client{Timeout: 2 * time.Minute}}
	lineCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lineCh <- sc.Text()
		}
		close(lineCh)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lineCh:
		var ready map[string]string
		if !ok || json.Unmarshal([]byte(line), &ready) != nil {
			c.Close()
			return nil, fmt.Errorf("benchkit: child %s did not start (%q)", spec.Role, line)
		}
		c.URL, c.Cookie = ready["url"], ready["cookie"]
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		c.Close()
		return nil, errors.New("benchkit: child did not start within a minute")
	}
	return c, nil
}

// PID returns the child's process id.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// Stats reads the child's counters.
func (c *Child) Stats(ctx context.Context) (ChildStats, error) {
	var st ChildStats
	req, _ := http.NewRequestWithContext(ctx, "GET", c.ctl+"/stats", nil)
	resp, err := c.client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// SetBareHeaders tells a bare child to set and remove these upstream
// request headers.
func (c *Child) SetBareHeaders(ctx context.Context, set map[string]string, del []string) error {
	raw, _ := json.Marshal(bareHeaders{Set: set, Del: del})
	req, _ := http.NewRequestWithContext(ctx, "POST", c.ctl+"/bare-headers", strings.NewReader(string(raw)))
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("benchkit: bare headers: status %d", resp.StatusCode)
	}
	return nil
}

// Profile fetches a pprof profile (kind "profile" for CPU, "allocs", ...)
// covering the next d and writes it to path.
func (c *Child) Profile(ctx context.Context, kind string, d time.Duration, path string) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", c.ctl, kind, int(d/time.Second)), nil)
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("benchkit: pprof %s: %d %s", kind, resp.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Close stops the child: its stdin closes, and after a grace period it is
// killed.
func (c *Child) Close() error {
	c.stdin.Close()
	done := make(chan struct{})
	go func() {
		c.waitOnce.Do(func() { c.waitErr = c.cmd.Wait() })
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	return c.waitErr
}
