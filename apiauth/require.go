package apiauth

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// RequireScope returns middleware that calls next only when the verified
// token (see [Verifier.Handler]) was granted every one of scopes, and
// otherwise answers 403 insufficient_scope naming them (RFC 6750 §3.1).
// Granted scopes are read from `scope` (a space-separated string, RFC
// 9068 §2.2.3, or an array) or, without it, `scp`. It panics when a scope
// is not a valid scope token (RFC 6749 §3.3), a programming error.
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	for _, s := range scopes {
		if !validScope(s) {
			panic("apiauth: RequireScope: invalid scope " + strconv.Quote(s))
		}
	}
	need := strings.Join(scopes, " ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, ok := r.Context().Value(contextKey{}).(*verified)
			if !ok {
				WriteError(w, &Error{Status: http.StatusUnauthorized})
				return
			}
			granted := grantedScopes(v.claims)
			for _, s := range scopes {
				if !slices.Contains(granted, s) {
					WriteError(w, &Error{Status: http.StatusForbidden, Code: "insufficient_scope", scheme: v.scheme, scope: need})
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireClaim returns middleware that calls next only when the verified
// claim name equals one of values, or is an array that contains one, and
// otherwise answers 403 {"error":"forbidden"}. Booleans and numbers match
// their JSON text ("true", "42"); a missing claim never matches.
func RequireClaim(name string, values ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, ok := r.Context().Value(contextKey{}).(*verified)
			if !ok {
				WriteError(w, &Error{Status: http.StatusUnauthorized})
				return
			}
			if !claimMatches(v.claims[name], values) {
				WriteError(w, &Error{Status: http.StatusForbidden, Code: "forbidden", scheme: v.scheme})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// claimMatches: a scalar equal to one of values, or an array holding one.
func claimMatches(claim any, values []string) bool {
	if arr, ok := claim.([]any); ok {
		for _, e := range arr {
			if scalarMatches(e, values) {
				return true
			}
		}
		return false
	}
	return scalarMatches(claim, values)
}

func scalarMatches(v any, values []string) bool {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case bool:
		s = strconv.FormatBool(x)
	case json.Number:
		s = x.String()
	default:
		return false
	}
	return slices.Contains(values, s)
}

// grantedScopes reads `scope` or, without it, `scp`.
func grantedScopes(c Claims) []string {
	raw, ok := c["scope"]
	if !ok {
		raw = c["scp"]
	}
	switch x := raw.(type) {
	case string:
		return strings.Fields(x)
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// validScope: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) (RFC 6749 §3.3).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
