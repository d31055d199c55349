// Package proxy forwards the single-page application's API calls to the
// configured upstreams, adding the access token the caller obtained.
//
// The package knows nothing about sessions or OpenID Connect. The gateway
// matches a route ([Proxy.Match]), checks anti-forgery, loads the session,
// obtains a fresh access token and hands it over with [WithToken]; then
// [Proxy.ServeRoute] forwards the request with httputil.ReverseProxy. Only
// the upstreams named in the routes are ever contacted (OAuth 2.0 for
// Browser-Based Apps §6.1: the BFF proxies to an allowlist).
//
// # What the upstream receives
//
// Removed from every request (RFC 9700 §4.13), matching header names
// case-insensitively and treating "_" like "-" so that "X_Forwarded_For" or
// "x-forwarded_user" cannot slip through to an upstream that normalises
// names:
//
//   - every cookie but those the route lists in Route.ForwardCookies, and
//     every Gatehouse cookie (see Options.CookiePrefix and
//     Options.StripCookie) even when listed: by default no Cookie header
//     reaches an upstream;
//   - Authorization and Proxy-Authorization sent by the browser;
//   - forwarding headers: Forwarded, X-Forwarded-*, X-Real-Ip, X-Client-Ip,
//     True-Client-Ip, X-Cluster-Client-Ip, X-Original-Forwarded-For,
//     X-Original-Url, X-Rewrite-Url, X-Original-Uri;
//   - method overrides, which could tunnel a method past a route's method
//     list: X-Http-Method-Override, X-Http-Method, X-Method-Override;
//   - identity headers other gateways use: X-Auth-Request-*, X-Gatehouse-*,
//     X-Remote-User, X-Remote-Email, X-Remote-Groups, X-Remote-Name,
//     Remote-User, X-User, X-User-Id, X-Email, X-Userinfo, X-Id-Token,
//     X-Access-Token, X-Amzn-Oidc-*, X-Ms-Client-Principal*,
//     X-Goog-Authenticated-User-*, X-Goog-Iap-*;
//   - the request id header (Options.RequestIDHeader), and the route's
//     Route.IdentityHeaders, which only Gatehouse sets (Credential.Headers);
//   - hop-by-hop headers (httputil.ReverseProxy).
//
// Set on every request: Authorization: Bearer <token> when the context
// carries a token and the route's mode is not "none"; X-Forwarded-For (the
// peer's address, appended to the inbound chain only when the peer is one of
// Options.TrustedProxies); X-Forwarded-Proto and X-Forwarded-Host from
// Options.PublicURL; the request id. The Host header is the upstream's.
//
// Set-Cookie response headers naming a Gatehouse cookie (or that do not
// parse) are removed, so an upstream cannot overwrite the session cookie.
//
// # Paths
//
// [Proxy.Match] refuses request paths that are not in clean form: "." or
// ".." segments (also when percent-encoded, and "..;" as Java servlet
// containers read it), empty segments ("//"), backslashes, control
// characters, encoded slashes or backslashes ("%2f", "%5c") and
// double-encoded dots or slashes. Such requests match no route, so they
// cannot escape a route's prefix on an upstream that decodes differently.
//
// # Errors
//
// Upstream failures are answered with JSON bodies carrying no internal
// detail: 502 {"error":"bad_gateway"} when the upstream cannot be reached,
// 504 {"error":"upstream_timeout"} when its response headers do not arrive
// within the route's Timeout, 405 {"error":"method_not_allowed"} (with
// Allow) when the route does not allow the method, 401 {"error":"unauthorized"}
// when a route whose token mode needs a token gets none. The detail is
// logged with the request id.
//
// # Streaming and WebSocket
//
// Server-sent events and other responses of unknown length are flushed to
// the browser after every write. A route's Timeout covers only the wait for
// the response headers, never the body or an upgraded (WebSocket)
// connection. For upgrades the server's read and write deadlines on the
// browser connection are cleared, for event streams the write deadline, so
// that the server's timeouts for ordinary requests do not cut them.
//
// # Token leak guard
//
// Unless Options.SkipLeakGuard is set, a response that would hand the access
// token sent upstream to the browser is stopped (a debug endpoint echoing
// request headers is the typical cause; a BFF must never expose tokens to
// the browser, OAuth 2.0 for Browser-Based Apps §6.1):
//
//   - response headers containing the token: 502 {"error":"upstream_leak_blocked"};
//   - response bodies are scanned as they stream, holding back only the
//     longest tail of what was read that could be the start of the token
//     (at most len(token)-1 bytes; usually nothing). Response headers are
//     held until the first body byte is written, so a token found in the
//     first read answers 502 {"error":"upstream_leak_blocked"}; a token
//     found later aborts the connection, so the browser sees a broken
//     response and never the token;
//   - trailers containing the token are dropped and the connection aborted.
//
// The guard finds the token as sent, byte for byte; it does not look for
// encoded forms (base64, JSON escapes, URL encoding). So that compressed
// bodies can be scanned, a request carrying a token is sent without the
// browser's Accept-Encoding: the transport then asks for gzip and decodes
// it, and the browser receives the body uncompressed. A body in an encoding
// the gateway did not ask for is passed through unscanned. Upgraded
// connections (101 Switching Protocols) are not scanned: holding back bytes
// would delay WebSocket messages. A warning is logged on every block,
// without the token.
package proxy
