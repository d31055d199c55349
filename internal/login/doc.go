// Package login runs the OpenID Connect authorization code flow for the
// browser: the login endpoint that starts a transaction and sends the
// browser to the provider, and the callback that checks the provider's
// answer and creates the server-side session.
//
// A transaction's secrets (state, nonce, PKCE verifier, return URL) travel
// in a short-lived sealed __Host- cookie bound to its state, so any replica
// can finish it, and the state is recorded as used so it works once only
// (RFC 9700 §2.1, §4.2.4, §4.7.1).
//
// One browser holds at most three pending transactions per app (within
// 3.5 KiB of cookies): starting another drops the oldest, whose cookie is
// deleted and whose state is recorded as spent, and completing a login
// spends all the others. A page that keeps navigating the browser to the
// login endpoint therefore cannot fill its cookie jar.
//
// A silent login (Duende BFF's protocol: /silent-login, or /login?prompt=none
// in a frame) comes back to the same callback; its transaction says it is
// silent, and the callback answers a page that posts the outcome to the
// parent frame on the app's own origin. A step-up login (acr_values,
// max_age) is checked at the callback against the ID token's acr and
// auth_time (OpenID Connect Core §3.1.2.1, §3.1.3.7) and, when it succeeds,
// moves the session to a new id.
package login
