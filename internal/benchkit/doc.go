// Package benchkit is the shared machinery of the measuring programs under
// bench/: a loopback upstream, the development OpenID provider with a
// token-endpoint observer, Gatehouse served the way `gatehouse serve` serves
// it (access log, metrics), a bare httputil.ReverseProxy to compare with,
// sign-in through the real login flow, load generators (in-process and
// wrk), latency histograms and process samplers.
//
// Everything listens on 127.0.0.1 only. Nothing here is part of Gatehouse's
// public API; the programs and their smoke tests are its only users.
package benchkit
