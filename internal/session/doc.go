// Package session keeps Gatehouse's server-side sessions: the record that
// holds a signed-in user's tokens, the Store contract that persists it, and
// the Manager that ties a browser cookie to a stored record.
//
// The browser only ever holds an opaque random identifier (at least 256 bits
// from crypto/rand). Stores never see that identifier: they are keyed by its
// SHA-256 hash, so a dump of a store yields no usable cookie (OWASP ASVS
// V3). Token material is sealed with an AEAD key ring before it reaches a
// store, so a dump yields no usable token either.
package session
