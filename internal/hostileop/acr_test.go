package hostileop

import (
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// claimsAfter runs the code flow with extra authorization parameters and
// returns the ID token's claims.
func claimsAfter(t *testing.T, r *rp, extra ...oauth2.AuthCodeOption) map[string]any {
	t.Helper()
	a := r.authorize(t, extra...)
	tok, err := r.conf.Exchange(r.ctx, a.params.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return parseJWT(t, rawIDToken(t, tok)).claims
}

func TestACRAndAuthTime(t *testing.T) {
	r := newRP(t)
	if c := claimsAfter(t, r); c["acr"] != nil || c["auth_time"] != float64(r.clk.Now().Unix()) {
		t.Errorf("plain login: acr %v, auth_time %v; want no acr and auth_time now", c["acr"], c["auth_time"])
	}
	asked := oauth2.SetAuthURLParam("acr_values", "urn:mfa urn:hwk")
	if c := claimsAfter(t, r, asked); c["acr"] != "urn:mfa" {
		t.Errorf("acr = %v, want the first requested urn:mfa", c["acr"])
	}
	r.p.SetACR("urn:weak")
	if c := claimsAfter(t, r, asked); c["acr"] != "urn:weak" {
		t.Errorf("scripted acr = %v, want urn:weak", c["acr"])
	}
	r.p.SetAuthAge(time.Hour)
	if c := claimsAfter(t, r); c["auth_time"] != float64(r.clk.Now().Add(-time.Hour).Unix()) {
		t.Errorf("auth_time = %v, want an hour ago", c["auth_time"])
	}
	r.p.SetDefect(AuthTimeMissing)
	if c := claimsAfter(t, r, oauth2.SetAuthURLParam("max_age", "60")); c["auth_time"] != nil {
		t.Errorf("AuthTimeMissing token has auth_time %v", c["auth_time"])
	}
}
