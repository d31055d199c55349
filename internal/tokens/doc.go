// Package tokens hands out fresh access tokens for proxied calls: the
// session user's token, refreshed shortly before it expires, and the
// gateway's own client-credentials tokens.
//
// Refreshes of one session are serialised: in one process by a single
// flight per session, across processes by an optional Locker, and the
// session is reloaded under the lock so a token another replica already
// refreshed is used rather than refreshed again. With rotating refresh
// tokens, replaying a spent one would revoke the whole family
// (RFC 9700 §4.14.2), so this serialisation is what keeps sessions alive.
//
// The package depends on two small interfaces of its own, Provider (the
// token endpoint) and Sessions (the session store), which
// *provider.Source and *session.Manager implement; client-credentials and
// exchanged tokens are kept by one caching wrapper.
package tokens
