package systemtest

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

// TestStepUpRoundTripRotatesSessionID: a route that requires an acr the
// session lacks answers step_up_required; the login it names upgrades the
// session under a new id, the route then passes, and the old cookie is no
// session any more.
func TestStepUpRoundTripRotatesSessionID(t *testing.T) {
	e := newEnv(t)
	op := hostileop.New(t, hostileop.WithClient(testClientID, testClientSecret, e.callbackURL()))
	op.SetClock(e.clock.Now)
	op.SetACR("urn:example:pwd")
	e.start(op.URL, func(c *config.Config) {
		c.Routes = append(c.Routes, config.Route{Prefix: "/pay/", Upstream: e.api.URL,
			Require: config.Require{ACR: []string{"urn:example:mfa"}}})
	})
	b := e.browser()
	b.login("/")
	before := b.cookie("__Host-gatehouse")
	resp := b.api("GET", "/pay/x")
	body := errorBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || body["error"] != "step_up_required" || body["acr_values"] != "urn:example:mfa" {
		t.Fatalf("before step-up: %d %v", resp.StatusCode, body)
	}
	// A value no route requires is refused.
	if got := b.do("GET", "/bff/login?acr_values=urn:example:other&returnUrl=/", nil, false).StatusCode; got != http.StatusBadRequest {
		t.Errorf("step-up to an acr no route requires = %d, want 400", got)
	}
	op.SetACR("") // the provider now answers with the acr asked for
	b.do("GET", "/bff/login?acr_values="+url.QueryEscape("urn:example:mfa")+"&returnUrl=/", nil, true)
	after := b.cookie("__Host-gatehouse")
	if after == nil || before == nil || after.Value == before.Value {
		t.Fatal("the step-up kept the session id; a privilege change must rotate it")
	}
	if got := b.api("GET", "/pay/x").StatusCode; got != http.StatusOK {
		t.Errorf("after step-up: %d, want 200", got)
	}
	old := e.browser()
	old.c.Jar.SetCookies(mustURL(t, e.publicURL), []*http.Cookie{before})
	if status, _ := old.user(); status != http.StatusUnauthorized {
		t.Errorf("the pre-step-up cookie: /bff/user = %d, want 401", status)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
