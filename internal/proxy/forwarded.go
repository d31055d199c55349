package proxy

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedChain bounds how many inbound X-Forwarded-For entries are
// kept; the ones nearest to Gatehouse are kept.
const maxForwardedChain = 32

// forwardedFor returns the X-Forwarded-For value for in: the peer's address,
// appended to the inbound chain when the peer is a trusted proxy and the
// chain parses as a list of addresses. It returns "" when the peer address
// is unknown.
func (p *Proxy) forwardedFor(in *http.Request) string {
	peer, ok := peerAddr(in.RemoteAddr)
	if !ok {
		return ""
	}
	client := peer.String()
	if !p.trustedPeer(peer) {
		return client
	}
	chain, ok := parseForwardedFor(in.Header["X-Forwarded-For"])
	if !ok || len(chain) == 0 {
		return client
	}
	if len(chain) > maxForwardedChain {
		chain = chain[len(chain)-maxForwardedChain:]
	}
	return strings.Join(chain, ", ") + ", " + client
}

func (p *Proxy) trustedPeer(a netip.Addr) bool {
	for _, pfx := range p.trustedProxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses a RemoteAddr "ip:port" (or a bare ip).
func peerAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// parseForwardedFor parses X-Forwarded-For header lines into normalised
// addresses. Entries may carry a port ("1.2.3.4:80", "[::1]:80"), which is
// dropped. Any entry that is not an address makes the whole chain invalid.
func parseForwardedFor(lines []string) ([]string, bool) {
	var out []string
	for _, l := range lines {
		for e := range strings.SplitSeq(l, ",") {
			e = strings.TrimSpace(e)
			a, ok := peerAddr(e)
			if !ok {
				if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
					a, ok = peerAddr(e[1 : len(e)-1])
				}
				if !ok {
					return nil, false
				}
			}
			out = append(out, a.String())
		}
	}
	return out, true
}
