// Package server runs a Gatehouse handler on a listener: it bounds how long
// a client may take to send headers and how large they may be, serves HTTPS
// (TLS 1.2 or later, HTTP/2 negotiated by ALPN) with a certificate that is
// reloaded when its files change on disk, and shuts down gracefully,
// letting in-flight requests finish for a bounded drain time.
//
// The server itself sets no write timeout, because proxied API calls and
// server-sent event streams may legitimately run long. Handlers that answer
// by themselves, such as the session endpoints, wrap themselves in
// WriteDeadline and LimitBody instead.
package server
