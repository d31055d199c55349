// Package apiauth is middleware for Go APIs that sit behind Gatehouse: it
// authenticates each request, so the API trusts what it can verify rather
// than the network it is on.
//
// A [Verifier] accepts two kinds of credential:
//
//   - JWT access tokens from the OpenID provider (RFC 9068): the ones
//     Gatehouse forwards on a route with `token: user` (or `client`).
//     `Authorization: Bearer <token>` for an unbound token; a token bound
//     to a key (`cnf.jkt`, as Gatehouse's DPoP sessions get) must come as
//     `Authorization: DPoP <token>` with a valid `DPoP` proof (RFC 9449
//     §7), and is refused as a bearer token.
//   - The gateway's identity assertion, `X-Gatehouse-Assertion`: a short
//     lived JWT Gatehouse signs on routes with `identity.assertion: true`,
//     checked against the gateway's key set (<origin>/bff/jwks.json), for
//     APIs that do not see tokens.
//
// Verification is done with go-jose (JWS, JWK thumbprints) and go-oidc
// (discovery): asymmetric algorithms only, `typ` at+jwt, `iss` exactly,
// `aud` containing [Config.Audience], `exp`, `nbf` and `iat` with a small
// leeway. Key sets are fetched on first use and again for an unknown key
// id, at a bounded rate. DPoP proofs are checked for method, URL, age,
// access token hash and key, and their ids are remembered against replay.
//
// [Verifier.Handler] wraps an http.Handler and puts the verified [Claims]
// in the request context ([FromContext]); [Verifier.Check] is the same
// check for code that writes its own responses ([WriteError] answers as
// the handler would). [RequireScope] and [RequireClaim] are per-handler
// checks behind it:
//
//	v, err := apiauth.New(apiauth.Config{
//		Issuer:   "https://login.example.com",
//		Audience: "https://orders.example.com",
//	})
//	...
//	mux.Handle("POST /orders", apiauth.RequireScope("orders:write")(createOrder))
//	mux.Handle("DELETE /orders/{id}", apiauth.RequireClaim("groups", "admins")(deleteOrder))
//	http.ListenAndServe(addr, v.Handler(mux))
//
// Refusals follow RFC 6750 §3 and RFC 9449 §7.1: 401 with
// `WWW-Authenticate: Bearer error="invalid_token"` (or
// `DPoP error="invalid_dpop_proof", algs="…"`), a bare challenge when no
// credentials were sent, 403 `insufficient_scope` with `scope=`, and a JSON
// body {"error": code}. Why a token failed is never told to the client; it
// goes to [Config.Logger], which never sees a token.
package apiauth
