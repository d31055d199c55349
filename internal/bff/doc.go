// Package bff serves the session endpoints a browser frontend calls besides
// login: the user endpoint (who is signed in, in Duende BFF's claim-array
// shape), the logout endpoint (end the session here and at the provider),
// the session list (the user's own sessions, to end one or all others) and,
// in development, the diagnostics (what the session holds, as metadata).
package bff
