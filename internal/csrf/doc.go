// Package csrf is Gatehouse's anti-forgery check for API calls from the
// single-page application.
//
// The defense follows OAuth 2.0 for Browser-Based Apps (BFF pattern, §6.1):
// every API request must carry a custom request header (by default
// "X-CSRF: 1", as Duende BFF frontends send). A cross-origin page cannot add
// such a header without a CORS preflight, which Gatehouse never answers
// positively, so the header alone proves the request came from a page of the
// application's own origin. The Origin and Sec-Fetch-Site request headers are
// checked as well, on every method: API routes are proxied to backends whose
// GET handlers may have side effects, so the "safe methods" exemption of
// net/http's CrossOriginProtection does not apply here.
//
// Rules, in order:
//
//  1. A WebSocket opening handshake (Connection: upgrade, Upgrade: websocket)
//     cannot carry a custom header. It must carry an Origin header equal to
//     the configured origin or a trusted origin ([ErrMissingOrigin],
//     [ErrCrossOrigin]).
//  2. Every other request must carry the configured header exactly once with
//     exactly the configured value. A wrong value counts as missing
//     ([ErrMissingHeader]).
//  3. When an Origin header is present it must equal the configured origin or
//     a trusted origin ([ErrCrossOrigin]). "null" never matches.
//  4. When a Sec-Fetch-Site header is present it must be "same-origin". A
//     request whose Origin is one of the trusted origins may also be
//     "same-site" or "cross-site" (that is what trusting another origin
//     means). "none" marks a request the user started (typing a URL, a
//     bookmark); a page's script never produces it, so it is accepted only
//     for GET and HEAD. Any other value is rejected ([ErrCrossOrigin]).
//
// Requests without Origin and Sec-Fetch-Site come from non-browser clients or
// browsers older than 2023; the custom header is the defense for them.
//
// Origins are compared exactly after normalisation: scheme and host
// lower-cased, default ports (80 for http, 443 for https) removed.
package csrf
