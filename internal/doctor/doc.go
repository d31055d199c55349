// Package doctor checks a Gatehouse deployment before it serves traffic:
// the configuration, what the OpenID provider's discovery document says it
// supports against what Gatehouse needs (RFC 9700, RFC 9207, OpenID
// Connect Discovery and Back-Channel Logout), the clock against the
// provider's, the redirect URIs to register, the cookie, TLS, key ring,
// admin listener and session store.
//
// Run returns a Report of checks, each PASS, INFO, WARN or FAIL with the
// reason and the fix; the gatehouse check command formats it. Run never
// changes anything: it only reads the configuration, fetches discovery and
// the key set, and pings a Redis store.
package doctor
