package hostileop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// rpVerifyLogout is Back-Channel Logout 1.0 §2.6 validation: go-oidc's
// VerifyLogout checks signature, alg, iss, aud, exp, jti, events, nonce and
// sub/sid; the checks it leaves out (iat present, the events member is a
// JSON object, an acceptable typ) are done here.
func rpVerifyLogout(ctx context.Context, v *oidc.IDTokenVerifier, raw, typ string) (*oidc.LogoutToken, error) {
	lt, err := v.VerifyLogout(ctx, raw)
	if err != nil {
		return nil, err
	}
	if lt.IssuedAt.IsZero() {
		return nil, errors.New("iat missing")
	}
	var c struct {
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := lt.Claims(&c); err != nil {
		return nil, err
	}
	var member map[string]any
	if err := json.Unmarshal(c.Events[BackchannelLogoutEvent], &member); err != nil || member == nil {
		return nil, fmt.Errorf("logout event member is not a JSON object: %s", c.Events[BackchannelLogoutEvent])
	}
	switch strings.ToLower(typ) {
	case "", "jwt", "logout+jwt", "application/logout+jwt":
	default:
		return nil, fmt.Errorf("typ %q not acceptable", typ)
	}
	return lt, nil
}

func TestValidLogoutTokens(t *testing.T) {
	r := newRP(t)
	for _, tc := range []struct {
		name    string
		claims  LogoutClaims
		defects []LogoutDefect
		typ     string
	}{
		{"sub and sid", LogoutClaims{Subject: "alice", SessionID: "sid-1"}, nil, "logout+jwt"},
		{"sid only", LogoutClaims{SessionID: "sid-1"}, nil, "logout+jwt"},
		{"sub only", LogoutClaims{Subject: "alice"}, nil, "logout+jwt"},
		{"typ JWT", LogoutClaims{SessionID: "sid-1"}, []LogoutDefect{LogoutTyp("JWT")}, "JWT"},
		{"no typ", LogoutClaims{SessionID: "sid-1"}, []LogoutDefect{LogoutTyp("")}, ""},
		{"given jti and extra claim", LogoutClaims{SessionID: "sid-1", ID: "jti-fixed", Extra: map[string]any{"x": "y"}}, nil, "logout+jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := r.p.LogoutToken(tc.claims, tc.defects...)
			j := parseJWT(t, raw)
			if j.typ != tc.typ || j.alg != "RS256" || j.kid != r.p.CurrentKeyID() {
				t.Errorf("header typ=%q alg=%q kid=%q", j.typ, j.alg, j.kid)
			}
			lt, err := rpVerifyLogout(r.ctx, r.verifier, raw, j.typ)
			if err != nil {
				t.Fatalf("valid logout token rejected: %v", err)
			}
			if lt.Subject != tc.claims.Subject || lt.SessionID != tc.claims.SessionID || lt.Issuer != r.p.URL {
				t.Errorf("logout token %+v", lt)
			}
			if tc.claims.ID != "" && lt.TokenID != tc.claims.ID {
				t.Errorf("jti %q, want %q", lt.TokenID, tc.claims.ID)
			}
			if !lt.Expiry.Equal(r.clk.Now().Add(LogoutTokenTTL).Truncate(time.Second)) {
				t.Errorf("exp %v", lt.Expiry)
			}
			if _, ok := j.claims["nonce"]; ok {
				t.Error("nonce present in a valid logout token")
			}
		})
	}
	// jti is unique per token unless given.
	a, b := parseJWT(t, r.p.LogoutToken(LogoutClaims{SessionID: "s"})), parseJWT(t, r.p.LogoutToken(LogoutClaims{SessionID: "s"}))
	if a.claims["jti"] == b.claims["jti"] {
		t.Error("two logout tokens share a jti")
	}
}

func TestEveryLogoutDefectIsRejectedAndReallyPresent(t *testing.T) {
	r := newRP(t)
	p := r.p
	hmacSecret := []byte(testSecret)
	has := func(j parsedJWT, claim string) bool { _, ok := j.claims[claim]; return ok }
	events := func(j parsedJWT) map[string]any { e, _ := j.claims["events"].(map[string]any); return e }

	type tc struct {
		defect LogoutDefect
		sigOK  bool
		proof  func(j parsedJWT) bool
	}
	cases := map[string]tc{
		"BadSignature": {LogoutBadSignature, false, func(j parsedJWT) bool {
			return j.alg == "RS256" && j.kid == p.CurrentKeyID() && j.claims["iss"] == p.URL
		}},
		"AlgNone": {LogoutAlgNone, false, func(j parsedJWT) bool { return j.alg == "none" && len(j.sig) == 0 }},
		"UnknownKey": {LogoutUnknownKey, false, func(j parsedJWT) bool {
			return j.alg == "RS256" && j.kid != "" && !published(fetchJWKS(t, p), j.kid)
		}},
		"WrongIssuer":   {LogoutWrongIssuer, true, func(j parsedJWT) bool { return j.claims["iss"] == OtherIssuer }},
		"WrongAudience": {LogoutWrongAudience, true, func(j parsedJWT) bool { return j.claims["aud"] == OtherAudience }},
		"Expired": {LogoutExpired, true, func(j parsedJWT) bool {
			exp, ok := j.claims["exp"].(float64)
			return ok && time.Unix(int64(exp), 0).Before(r.clk.Now())
		}},
		"MissingExp":    {LogoutMissingExp, true, func(j parsedJWT) bool { return !has(j, "exp") }},
		"MissingEvents": {LogoutMissingEvents, true, func(j parsedJWT) bool { return !has(j, "events") }},
		"WrongEvents": {LogoutWrongEvents, true, func(j parsedJWT) bool {
			_, ok := events(j)[BackchannelLogoutEvent]
			return events(j) != nil && !ok
		}},
		"EventNotObject": {LogoutEventNotObject, true, func(j parsedJWT) bool {
			_, isString := events(j)[BackchannelLogoutEvent].(string)
			return isString
		}},
		"NoncePresent": {LogoutNoncePresent, true, func(j parsedJWT) bool { return has(j, "nonce") }},
		"NoSubNoSID":   {LogoutNoSubNoSID, true, func(j parsedJWT) bool { return !has(j, "sub") && !has(j, "sid") }},
		"MissingJTI":   {LogoutMissingJTI, true, func(j parsedJWT) bool { return !has(j, "jti") }},
		"MissingIat":   {LogoutMissingIat, true, func(j parsedJWT) bool { return !has(j, "iat") }},
		"HS256": {LogoutHS256(hmacSecret), false, func(j parsedJWT) bool {
			_, err := j.jws.Verify(hmacSecret)
			return j.alg == "HS256" && j.kid == p.CurrentKeyID() && err == nil
		}},
		"Typ(at+jwt)": {LogoutTyp("at+jwt"), true, func(j parsedJWT) bool { return j.typ == "at+jwt" }},
	}
	for _, d := range LogoutDefects() {
		if _, ok := cases[d.String()]; !ok {
			t.Errorf("no test case for logout defect %v", d)
		}
	}

	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.defect.String() != name {
				t.Fatalf("case %q tests defect %v", name, c.defect)
			}
			raw := p.LogoutToken(LogoutClaims{Subject: "alice", SessionID: "sid-1"}, c.defect)
			j := parseJWT(t, raw)
			if _, err := rpVerifyLogout(r.ctx, r.verifier, raw, j.typ); err == nil {
				t.Errorf("relying party accepted a logout token with defect %v", c.defect)
			}
			if got := verifiesWithJWKS(t, p, j); got != c.sigOK {
				t.Errorf("signature verifies with published key = %v, want %v", got, c.sigOK)
			}
			if !c.proof(j) {
				t.Errorf("defect %v not present: alg=%q kid=%q typ=%q claims=%v", c.defect, j.alg, j.kid, j.typ, j.claims)
			}
		})
	}
}

func TestLogoutDefectsCombine(t *testing.T) {
	r := newRP(t)
	raw := r.p.LogoutToken(LogoutClaims{SessionID: "sid-1"}, LogoutWrongIssuer, LogoutNoncePresent, LogoutAlgNone, LogoutTyp("JWT"))
	j := parseJWT(t, raw)
	if j.alg != "none" || j.typ != "JWT" || j.claims["iss"] != OtherIssuer || j.claims["nonce"] == nil {
		t.Errorf("combined defects: alg=%q typ=%q claims=%v", j.alg, j.typ, j.claims)
	}
}
