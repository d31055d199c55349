package systemtest

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/prometheus/client_golang/prometheus"
)

// TestStreamsOfARemovedAppClose reloads the gateway without one of its
// apps: that app's sessions are accepted nowhere any more, so the streams
// they hold close; the remaining app's streams stay open.
func TestStreamsOfARemovedAppClose(t *testing.T) {
	e := newAppsEnv(t)
	top := "https://127.0.0.1:" + e.port
	up := newStreamUpstream(t)
	reg := prometheus.NewRegistry()
	e.options = append(e.options, gatehouse.WithMetrics(reg))
	op := hostileop.New(t,
		hostileop.WithClient("keep", testClientSecret, top+"/keep/bff/callback"),
		hostileop.WithClient("gone", testClientSecret, top+"/gone/bff/callback"))
	withLive := func(a config.App) config.App {
		a.Routes = append(a.Routes, config.Route{Prefix: "/" + a.Name + "/live/", Upstream: up.URL})
		return a
	}
	keep, gone := withLive(e.pathApp("keep", "keep")), withLive(e.pathApp("gone", "gone"))
	var running *config.Config
	e.start(op.URL, func(c *config.Config) {
		c.Routes, c.Frontend = nil, config.Frontend{}
		c.Apps = []config.App{keep, gone}
		running = c
	})
	b := e.browser()
	b.login(top + "/keep")
	b.login(top + "/gone")
	kept := []*liveStream{openWebSocketAt(t, b.c, top, top+"/keep/live/ws"), openEventStreamAt(t, b.c, top+"/keep/live/sse")}
	removed := []*liveStream{openWebSocketAt(t, b.c, top, top+"/gone/live/ws"), openEventStreamAt(t, b.c, top+"/gone/live/sse")}

	next := *running
	next.Apps = []config.App{keep}
	next.SetDefaults()
	at := time.Now()
	if err := e.gw.Reload(func() (*config.Config, error) { return &next, nil }); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for _, s := range removed {
		d := waitClosed(t, s, at, "app removed")
		t.Logf("app removed: %s stream closed %v after the reload", s.kind, d.Round(time.Millisecond))
	}
	waitUpstreamEnded(t, up, 2, "app removed")
	for _, s := range kept {
		assertOpen(t, s, "the remaining app")
	}
	if n := metricValue(t, reg, "gatehouse_streams_closed_total", "app_removed"); n != 2 {
		t.Errorf("gatehouse_streams_closed_total{reason=\"app_removed\"} = %v, want 2", n)
	}
	if got := b.api("GET", top+"/keep/api/x").StatusCode; got != http.StatusOK {
		t.Errorf("the remaining app's API after the reload = %d", got)
	}
}
