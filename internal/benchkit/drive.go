package benchkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DriveResult is what one load run measured.
type DriveResult struct {
	Requests int64 // successful responses in the measured window
	Errors   int64 // failures and unexpected answers in the whole run
	FirstErr string
	Elapsed  time.Duration
	Lat      Hist
}

// RPS returns successful requests per second of the measured window.
func (r *DriveResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// NewClient returns an HTTP/1.1 keep-alive client holding up to conns
// connections to one host.
func NewClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute},
		Timeout:   30 * time.Second,
	}
}

// Drive sends req (cloned) from conns workers over client, back to back,
// for warm+d, and measures the last d. An answer other than 200 with
// wantLen body bytes (when wantLen >= 0) is an error. When onWindow is
// set, it is called as the measured window starts and ends.
func Drive(ctx context.Context, client *http.Client, req *http.Request, conns int, warm, d time.Duration, wantLen int, onWindow func(start bool)) *DriveResult {
	begin := time.Now().Add(warm)
	end := begin.Add(d)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		res      = &DriveResult{}
		errs     atomic.Int64
		firstErr sync.Once
	)
	fail := func(msg string) {
		errs.Add(1)
		firstErr.Do(func() { res.FirstErr = msg })
	}
	if onWindow != nil {
		go func() {
			select {
			case <-time.After(warm):
				onWindow(true)
			case <-ctx.Done():
				return
			}
			<-ctx.Done()
			onWindow(false)
		}()
	}
	for range conns {
		wg.Go(func() {
			var h Hist
			var n int64
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Do(req.Clone(ctx))
				if err != nil {
					if ctx.Err() == nil {
						fail(err.Error())
					}
					continue
				}
				m, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				t1 := time.Now()
				if resp.StatusCode != http.StatusOK || (wantLen >= 0 && m != int64(wantLen)) {
					fail(fmt.Sprintf("status %d, %d bytes", resp.StatusCode, m))
					continue
				}
				if t0.After(begin) && t1.Before(end) {
					h.Record(t1.Sub(t0))
					n++
				}
			}
			mu.Lock()
			res.Lat.Merge(&h)
			res.Requests += n
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Errors = errs.Load()
	res.Elapsed = d
	if time.Now().Before(end) { // cancelled early
		res.Elapsed = max(time.Since(begin), 0)
	}
	return res
}
