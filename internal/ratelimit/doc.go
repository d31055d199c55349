// Package ratelimit limits how often one client may call an endpoint, to
// blunt credential stuffing, login-flood and back-channel abuse.
//
// A Limiter keeps one token bucket (golang.org/x/time/rate) per client
// address, in bounded memory: at most MaxClients buckets, the least
// recently used dropped first, and buckets idle for longer than TTL dropped
// whenever room is needed. IPv6 clients are grouped by /64, the block one
// subscriber usually controls, so rotating addresses inside it gains
// nothing. The caller decides what the client address is (for example the
// peer address, or the X-Forwarded-For hop a trusted proxy appended).
package ratelimit
