// Package provider is Gatehouse's OpenID Connect client: discovery, the
// authorization request, the code exchange, ID token validation, refresh,
// UserInfo, revocation and the end-session URL. It stands on
// golang.org/x/oauth2 and github.com/coreos/go-oidc/v3 and adds the checks
// a certified relying party makes that those libraries leave to the caller
// (nonce, iat, sub, azp, at_hash, the RFC 9207 iss parameter, and
// unchanged iss/sub on refreshed ID tokens).
package provider
