package login

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/provider"
)

// authTimeSkew is the clock difference allowed when auth_time is checked
// against max_age.
const authTimeSkew = time.Minute

// maxACRValues bounds the length of an acr_values parameter.
const maxACRValues = 1024

// stepUp is what a login asks for beyond a plain sign-in: the
// authentication context classes (acr_values) and the most time since the
// user authenticated (max_age), OpenID Connect Core §3.1.2.1.
type stepUp struct {
	ACRValues []string
	// MaxAge is in seconds; nil when not asked for.
	MaxAge *int64
}

// parseStepUp reads acr_values and max_age from a login request. Only
// values some route requires may be asked for (allowedACR, allowedMaxAge),
// so a page cannot make the gateway send arbitrary ones; an empty parameter
// counts as absent. acr_values is a space-delimited list without
// repetitions; max_age is a whole number of seconds, written as
// OpenID Connect Core §3.1.2.1 defines it.
func parseStepUp(q url.Values, allowedACR []string, allowedMaxAge []time.Duration) (stepUp, bool) {
	var su stepUp
	if len(q["acr_values"]) > 1 || len(q["max_age"]) > 1 {
		return su, false
	}
	if s := q.Get("acr_values"); s != "" {
		if len(s) > maxACRValues {
			return su, false
		}
		for v := range strings.SplitSeq(s, " ") {
			if v == "" || slices.Contains(su.ACRValues, v) || !slices.Contains(allowedACR, v) {
				return stepUp{}, false
			}
			su.ACRValues = append(su.ACRValues, v)
		}
	}
	if s := q.Get("max_age"); s != "" {
		if len(s) > 10 || strings.TrimLeft(s, "0123456789") != "" {
			return stepUp{}, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || !slices.ContainsFunc(allowedMaxAge, func(d time.Duration) bool {
			return d >= 0 && d%time.Second == 0 && int64(d/time.Second) == n
		}) {
			return stepUp{}, false
		}
		su.MaxAge = &n
	}
	return su, true
}

// asked reports whether the login asks for a step-up at all.
func (su stepUp) asked() bool { return len(su.ACRValues) > 0 || su.MaxAge != nil }

// params returns the authorization request parameters of the step-up.
func (su stepUp) params() map[string]string {
	m := map[string]string{}
	if len(su.ACRValues) > 0 {
		m["acr_values"] = strings.Join(su.ACRValues, " ")
	}
	if su.MaxAge != nil {
		m["max_age"] = strconv.FormatInt(*su.MaxAge, 10)
	}
	return m
}

// idTokenAuth returns the acr and auth_time of a validated ID token.
// ok is false when auth_time is present but not a number.
func idTokenAuth(id *provider.IDToken) (acr string, authTime time.Time, ok bool) {
	acr, _ = id.Claims["acr"].(string)
	v, present := id.Claims["auth_time"]
	if !present {
		return acr, time.Time{}, true
	}
	f, isNum := v.(float64)
	if !isNum || f <= 0 || f > 1e11 {
		return acr, time.Time{}, false
	}
	return acr, time.Unix(int64(f), 0), true
}

// check applies OpenID Connect Core's checks of a step-up to the ID token
// that answered it, and returns why it fails, or "". With max_age sent,
// auth_time MUST be present (§3.1.2.1) and no older than max_age allows
// (§3.1.3.7 item 13); with acr_values sent, the returned acr must be one of
// them (§3.1.3.7 item 12, §5.5.1.1: a provider may answer with another,
// which grants nothing here).
func (su stepUp) check(id *provider.IDToken, now time.Time) string {
	acr, authTime, ok := idTokenAuth(id)
	if su.MaxAge != nil {
		switch {
		case !ok || authTime.IsZero():
			return "id token has no auth_time although max_age was sent"
		case now.Sub(authTime) > time.Duration(*su.MaxAge)*time.Second+authTimeSkew:
			return "user authenticated longer ago than max_age"
		case authTime.After(now.Add(authTimeSkew)):
			return "id token auth_time is in the future"
		}
	}
	if len(su.ACRValues) > 0 && !slices.Contains(su.ACRValues, acr) {
		return "id token acr is not one that was asked for"
	}
	return ""
}
