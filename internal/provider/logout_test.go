package provider_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
)

const (
	logoutClientID = "gatehouse"
	logoutSecret   = "a-client-secret-that-is-at-least-32-bytes"
)

// newLogoutProvider starts a hostile provider and discovers it, both on the
// same fixed clock.
func newLogoutProvider(t testing.TB) (*hostileop.Provider, *provider.Provider) {
	t.Helper()
	clk := testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	op := hostileop.New(t, hostileop.WithClient(logoutClientID, logoutSecret))
	op.SetClock(clk.Now)
	p, err := provider.Discover(context.Background(), provider.Options{
		Issuer:       op.URL,
		ClientID:     logoutClientID,
		ClientSecret: logoutSecret,
		HTTPClient:   op.HTTPClient(),
		Now:          clk.Now,
	})
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return op, p
}

func TestVerifyLogoutTokenAccepts(t *testing.T) {
	op, p := newLogoutProvider(t)
	tests := []struct {
		name    string
		claims  hostileop.LogoutClaims
		defects []hostileop.LogoutDefect
	}{
		{"sub and sid", hostileop.LogoutClaims{Subject: "alice", SessionID: "sid-1", ID: "jti-1"}, nil},
		{"sid only", hostileop.LogoutClaims{SessionID: "sid-1", ID: "jti-1"}, nil},
		{"sub only", hostileop.LogoutClaims{Subject: "alice", ID: "jti-1"}, nil},
		{"typ JWT", hostileop.LogoutClaims{Subject: "alice", ID: "jti-1"}, []hostileop.LogoutDefect{hostileop.LogoutTyp("JWT")}},
		{"typ absent", hostileop.LogoutClaims{Subject: "alice", ID: "jti-1"}, []hostileop.LogoutDefect{hostileop.LogoutTyp("")}},
		{"typ upper case", hostileop.LogoutClaims{Subject: "alice", ID: "jti-1"}, []hostileop.LogoutDefect{hostileop.LogoutTyp("LOGOUT+JWT")}},
		{"several audiences with azp", hostileop.LogoutClaims{Subject: "alice", ID: "jti-1", Extra: map[string]any{
			"aud": []string{logoutClientID, hostileop.OtherAudience}, "azp": logoutClientID}}, nil},
		{"event with members", hostileop.LogoutClaims{Subject: "alice", ID: "jti-1", Extra: map[string]any{
			"events": map[string]any{hostileop.BackchannelLogoutEvent: map[string]any{"x": 1}, "other": "y"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := op.LogoutToken(tt.claims, tt.defects...)
			lt, err := p.VerifyLogoutToken(context.Background(), raw)
			if err != nil {
				t.Fatalf("VerifyLogoutToken: %v", err)
			}
			if lt.Issuer != op.URL || lt.Subject != tt.claims.Subject || lt.SID != tt.claims.SessionID || lt.JTI != "jti-1" {
				t.Errorf("got %+v", lt)
			}
			if lt.IssuedAt.IsZero() || !lt.Expiry.After(lt.IssuedAt) {
				t.Errorf("times: iat %v exp %v", lt.IssuedAt, lt.Expiry)
			}
		})
	}
}

func TestVerifyLogoutTokenRejects(t *testing.T) {
	op, p := newLogoutProvider(t)
	good := hostileop.LogoutClaims{Subject: "alice", SessionID: "sid-1"}
	type tcase struct {
		name    string
		claims  hostileop.LogoutClaims
		defects []hostileop.LogoutDefect
		want    error // nil: any *ValidationError
	}
	tests := []tcase{
		{"HS256 with client secret", good, []hostileop.LogoutDefect{hostileop.LogoutHS256([]byte(logoutSecret))}, provider.ErrLogoutMalformed},
		{"alg none", good, []hostileop.LogoutDefect{hostileop.LogoutAlgNone}, provider.ErrLogoutMalformed},
		{"typ at+jwt", good, []hostileop.LogoutDefect{hostileop.LogoutTyp("at+jwt")}, provider.ErrLogoutTyp},
		{"typ id token like", good, []hostileop.LogoutDefect{hostileop.LogoutTyp("secevent+jwt")}, provider.ErrLogoutTyp},
		{"event not object", good, []hostileop.LogoutDefect{hostileop.LogoutEventNotObject}, provider.ErrLogoutEvents},
		{"wrong event", good, []hostileop.LogoutDefect{hostileop.LogoutWrongEvents}, provider.ErrLogoutEvents},
		{"events null member", hostileop.LogoutClaims{Subject: "alice", Extra: map[string]any{
			"events": map[string]any{hostileop.BackchannelLogoutEvent: nil}}}, nil, provider.ErrLogoutEvents},
		{"nonce present", good, []hostileop.LogoutDefect{hostileop.LogoutNoncePresent}, provider.ErrLogoutNonce},
		{"nonce null", hostileop.LogoutClaims{Subject: "alice", Extra: map[string]any{"nonce": nil}}, nil, provider.ErrLogoutNonce},
		{"neither sub nor sid", good, []hostileop.LogoutDefect{hostileop.LogoutNoSubNoSID}, provider.ErrLogoutNoSubject},
		{"missing jti", good, []hostileop.LogoutDefect{hostileop.LogoutMissingJTI}, provider.ErrLogoutNoJTI},
		{"missing iat", good, []hostileop.LogoutDefect{hostileop.LogoutMissingIat}, provider.ErrLogoutNoIat},
		{"iat in the future", hostileop.LogoutClaims{Subject: "alice", Extra: map[string]any{
			"iat": time.Date(2030, 1, 2, 4, 0, 0, 0, time.UTC).Unix()}}, nil, provider.ErrLogoutFutureIat},
		{"several audiences without azp", hostileop.LogoutClaims{Subject: "alice", Extra: map[string]any{
			"aud": []string{logoutClientID, hostileop.OtherAudience}}}, nil, provider.ErrLogoutAZP},
		{"azp of another client", hostileop.LogoutClaims{Subject: "alice", Extra: map[string]any{
			"aud": []string{logoutClientID, hostileop.OtherAudience}, "azp": hostileop.OtherAudience}}, nil, provider.ErrLogoutAZP},
		{"not a JWS", good, nil, provider.ErrLogoutMalformed},
	}
	for _, d := range hostileop.LogoutDefects() {
		tests = append(tests, tcase{name: "defect " + d.String(), claims: good, defects: []hostileop.LogoutDefect{d}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := op.LogoutToken(tt.claims, tt.defects...)
			if tt.name == "not a JWS" {
				raw = "not.a.jws"
			}
			lt, err := p.VerifyLogoutToken(context.Background(), raw)
			if err == nil {
				t.Fatalf("accepted: %+v", lt)
			}
			var ve *provider.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a *ValidationError", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzVerifyLogoutToken(f *testing.F) {
	op, p := newLogoutProvider(f)
	f.Add(op.LogoutToken(hostileop.LogoutClaims{Subject: "alice", SessionID: "sid-1"}))
	f.Add(op.LogoutToken(hostileop.LogoutClaims{Subject: "alice"}, hostileop.LogoutAlgNone))
	f.Add(op.LogoutToken(hostileop.LogoutClaims{Subject: "alice"}, hostileop.LogoutNoncePresent))
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		lt, err := p.VerifyLogoutToken(context.Background(), raw)
		if err != nil {
			var ve *provider.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a *ValidationError", err)
			}
			return
		}
		if lt.Issuer != op.URL || lt.JTI == "" || (lt.Subject == "" && lt.SID == "") {
			t.Fatalf("accepted an incomplete logout token: %+v", lt)
		}
	})
}
