package httpx

import (
	"net/http"
	"net/netip"
)

// FromLoopback reports whether r's TCP peer is a loopback address. It reads
// only the connection's address, never a forwarding header: behind a
// reverse proxy on the same host every request is from loopback, so a
// handler that serves loopback callers only must not be reachable through
// one.
func FromLoopback(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
