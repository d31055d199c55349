// Package hostileop is an in-process OpenID provider for Gatehouse's tests
// that misbehaves on request.
//
// A [Provider] serves discovery, JWKS, authorization, token, userinfo,
// revocation (RFC 7009) and end-session endpoints on a loopback
// httptest.Server. It behaves like a correct provider until a test turns a
// knob: ID tokens broken in one specific way ([Defect]), a wrong or missing
// RFC 9207 `iss` authorization response parameter ([IssParam]), a discovery
// document that names another issuer, key rotation and tokens signed with
// keys the JWKS does not (yet) publish, refresh tokens that rotate with reuse
// detection or fail in scripted ways ([RefreshMode]), and back-channel logout
// tokens with one chosen defect each ([LogoutDefect]), and DPoP (RFC 9449)
// sender-constrained access tokens with an optional nonce challenge
// ([Provider.SetDPoP], [Provider.SetDPoPNonce]).
//
// Every call is observable: [Provider.Stats] counts requests per endpoint and
// records revocations and end-session requests, [Provider.LastAuthorize] and
// [Provider.LastTokenRequest] return what the client sent, and
// [Provider.IssuedTokens] lists every token value handed out so leak tests
// can search responses and logs for them.
//
// A typical test registers the relying party under test and scripts one
// misbehaviour:
//
//	op := hostileop.New(t, hostileop.WithClient("gatehouse", secret, callbackURL))
//	op.SetDefect(hostileop.WrongIssuer)
//	// ... drive a login through Gatehouse against op.URL ...
//	if op.Stats().CodeGrants != 1 { ... }
//	for _, tok := range op.IssuedTokens() { /* must not appear in logs */ }
//
// The package is test support: it takes a testing.TB, shuts its server down
// in the test's cleanup, and reports its own internal failures through the
// TB. All knobs are safe to change between (and during) requests.
package hostileop
