// Package bff serves the session endpoints a browser frontend calls besides
// login: the user endpoint (who is signed in, in Duende BFF's claim-array
// shape) and the logout endpoint (end the session here and at the
// provider).
package bff
