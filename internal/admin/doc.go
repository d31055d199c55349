// Package admin lets operators and embedding programs list and end users'
// sessions on the server: every session of a subject ("log out
// everywhere"), every session of a provider session id, or one session by
// its handle.
//
// Service is the Go API; NewHandler serves it as a small JSON API under
// /admin/sessions for an operator listener that is kept apart from the
// public one. The handler requires a bearer token, or, when none is
// configured, a caller on a loopback address; ListenCheck refuses a
// configuration that would open the API to the network without a token.
package admin
