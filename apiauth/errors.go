package apiauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-bff/gatehouse/internal/dpop"
)

// Error is the error [Verifier.Check] returns for a request it refuses.
// Its text is the error code only; why a token failed is logged through
// Config.Logger and never returned.
type Error struct {
	// Status is the HTTP status to answer with: 400 (malformed request),
	// 401 (no or invalid credentials), 403 (insufficient scope or a failed
	// claim) or 503 (keys or the replay cache unavailable).
	Status int
	// Code is "invalid_request", "invalid_token" or "insufficient_scope"
	// (RFC 6750 §3.1), "invalid_dpop_proof" (RFC 9449 §7.1), "forbidden"
	// (a failed RequireClaim), "temporarily_unavailable", or "" for a
	// request that carried no credentials.
	Code string

	scheme string // challenge scheme: "Bearer" or "DPoP"
	scope  string // for insufficient_scope (RFC 6750 §3)
	offer  bool   // a bare challenge also offers DPoP
	detail error  // for the log only
}

// Error returns the error code, never the reason behind it.
func (e *Error) Error() string {
	if e.Code == "" {
		return "apiauth: no credentials"
	}
	return "apiauth: " + e.Code
}

// WriteError answers a request that err refused: the status, the
// WWW-Authenticate challenges of RFC 6750 §3 and RFC 9449 §7.1, and a JSON
// body {"error": code}. An error that is not an *Error is answered as an
// invalid token.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusUnauthorized, Code: "invalid_token", scheme: schemeBearer}
	}
	h := w.Header()
	h["Www-Authenticate"] = e.challenges()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	code := e.Code
	if code == "" {
		code = "unauthorized"
	}
	json.NewEncoder(w).Encode(map[string]string{"error": code})
}

const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// dpopAlgs is the algs parameter of a DPoP challenge (RFC 9449 §7.1): the
// proof algorithms accepted.
var dpopAlgs = func() string {
	var names []string
	for _, a := range dpop.Algorithms() {
		names = append(names, string(a))
	}
	return `algs="` + strings.Join(names, " ") + `"`
}()

// challenges are the WWW-Authenticate values for e. A request without
// credentials gets bare challenges (RFC 6750 §3: no error code); the
// others name the error in the scheme the client used.
func (e *Error) challenges() []string {
	switch e.Code {
	case "":
		if e.offer {
			return []string{schemeBearer, schemeDPoP + " " + dpopAlgs}
		}
		return []string{schemeBearer}
	case "forbidden", "temporarily_unavailable":
		// The credentials are fine; another attempt with them will not
		// do better, and a challenge would suggest it might.
		return nil
	}
	c := e.scheme + ` error="` + e.Code + `"`
	if e.scope != "" {
		c += `, scope="` + e.scope + `"`
	}
	if e.scheme == schemeDPoP {
		c += ", " + dpopAlgs
	}
	return []string{c}
}

// refusal builds the Error for a check that failed; detail is logged only.
func refusal(status int, code, scheme string, detail error) *Error {
	return &Error{Status: status, Code: code, scheme: scheme, detail: detail}
}
