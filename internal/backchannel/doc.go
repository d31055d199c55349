// Package backchannel serves OpenID Connect Back-Channel Logout 1.0: the
// provider POSTs a signed logout token to <bff prefix>/backchannel, and
// Gatehouse ends the sessions it names, server-side, without the browser
// taking part.
//
// The handler validates the token with provider.Provider.VerifyLogoutToken,
// records its jti in a session.OnceStore so that a replayed token is
// refused, and deletes the matching records from the session.Store: those
// of the token's issuer and sid, or every session of its issuer and sub
// when it names no sid. Because the endpoint needs no authentication, it
// also limits how often a token signed with a key it has not yet seen may
// make Gatehouse fetch the provider's JWKS again.
package backchannel
