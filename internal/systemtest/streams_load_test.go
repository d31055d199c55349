package systemtest

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

// TestThousandStreamsCloseWithTheirSessions holds 1,000 streams open
// through one gateway (50 sessions, each with 10 WebSockets and 10 event
// streams), logs every session out at once and reports the close latency
// percentiles. It asserts only that every stream closes; the figures are
// for the log (go test ./internal/systemtest -run ThousandStreams -v).
func TestThousandStreamsCloseWithTheirSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 streams: not in -short")
	}
	const sessions, perKind = 50, 10
	up := newStreamUpstream(t)
	e := newEnv(t)
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()),
		hostileop.WithPostLogoutRedirectURIs(testClientID, e.publicURL+"/"))
	op.SetClock(e.clock.Now)
	e.start(op.URL, withStreamRoute(up))

	browsers := make([]*browser, sessions)
	held := make([][]*liveStream, sessions)
	for i := range browsers {
		browsers[i] = e.browser()
		if r := browsers[i].login("/"); r.StatusCode != http.StatusOK {
			t.Fatalf("login %d = %d", i, r.StatusCode)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, b := range browsers {
		for j := range 2 * perKind {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				var s *liveStream
				if j%2 == 0 {
					s = openWebSocket(t, b)
				} else {
					s = openEventStream(t, b)
				}
				mu.Lock()
				held[i] = append(held[i], s)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Every session ends at about the same moment; each stream's latency
	// counts from its own session's logout.
	var lat latencies
	ends := make([]time.Time, sessions)
	logoutURLs := make([]string, sessions)
	for i, b := range browsers {
		_, claims := b.user()
		logoutURLs[i], _ = claims["bff:logout_url"].(string)
	}
	for i, b := range browsers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			req, _ := http.NewRequest("GET", e.publicURL+logoutURLs[i], nil)
			ends[i] = time.Now()
			resp, err := b.noFollow().Do(req)
			if err != nil {
				t.Errorf("logout %d: %v", i, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Errorf("logout %d = %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	open := 0
	deadline := time.Now().Add(3 * closeDeadline)
	for i := range held {
		for _, s := range held[i] {
			select {
			case at := <-s.closed:
				lat.add(at.Sub(ends[i]))
			case <-time.After(time.Until(deadline)):
				open++
			}
		}
	}
	if open > 0 {
		t.Errorf("%d of %d streams still open after their sessions ended", open, sessions*2*perKind)
	}
	t.Logf("%d streams closed after their sessions ended: p50 %v, p99 %v, max %v", len(lat.d),
		lat.percentile(0.50).Round(time.Millisecond), lat.percentile(0.99).Round(time.Millisecond), lat.percentile(1).Round(time.Millisecond))
	waitUpstreamEnded(t, up, sessions*2*perKind, "1,000 streams")
}
