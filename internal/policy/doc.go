// Package policy is the gateway's authorization layer for one API route:
// after the token layer found the caller's session, it checks the route's
// `require` conditions and adds the identity the route gives its upstream
// (`identity.headers` and the signed X-Gatehouse-Assertion).
//
// Refusals, none of which reaches the upstream:
//
//   - no session on a route with conditions: 401 {"error":"login_required"};
//   - claims or scopes not met: 403 {"error":"forbidden"};
//   - acr or max_age not met: 401 {"error":"step_up_required",
//     "acr_values":"…","max_age":…} naming what the route requires, so the
//     browser can log in again with GET <bff.prefix>/login?acr_values=&max_age=
//     (OpenID Connect Core §3.1.2.1).
//
// Claims are compared as a person reading the YAML expects: a string claim
// equals the value's text; a boolean claim matches true or false (any
// case); a number matches the value read as a number (2 matches 2.0); an
// array claim matches when one of its elements does; an object, null or
// missing claim never matches. Scopes are the access token's granted scope
// (the token response's scope, refreshed with the token; when the provider
// omitted it, the scopes requested, RFC 6749 §5.1).
//
// Identity headers carry the claim's text: strings as they are, numbers and
// booleans as in JSON, arrays of those joined by ", " (an element holding a
// comma is then ambiguous: prefer the assertion). An object claim, a
// missing claim, or a value with control characters sends no header,
// never an empty one.
package policy
