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
package login
