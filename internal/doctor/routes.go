package doctor

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
)

// routes: a route's require needs a session to judge, and identity headers
// are only as trustworthy as the network between Gatehouse and the API
// (SECURITY.md "Identity for upstream APIs").
func (d *doctor) routes() {
	routes := d.cfg.Routes
	for _, a := range d.cfg.Apps {
		routes = append(slices.Clip(routes), a.Resolve(d.cfg).Routes...)
	}
	for _, r := range routes {
		req := r.Require
		hasRequire := len(req.Claims) > 0 || len(req.Scopes) > 0 || len(req.ACR) > 0 || req.MaxAge > 0
		switch {
		case hasRequire && (r.Token == config.TokenNone || r.Token == config.TokenClient):
			d.addf(Fail, "route_require", "use token: user (or user_or_client) on a route with require, or remove require",
				"route %s has require but token: %s, which never loads the user's session: every request is refused with 401 login_required", r.Prefix, r.Token)
		case hasRequire && r.Token == config.TokenOptionalUser:
			d.addf(Warn, "route_require", "use token: user on a route with require, which is what it does",
				"route %s has require with token: optional_user: anonymous callers are refused (401 login_required), so the route is not optional", r.Prefix)
		case hasRequire:
			d.addf(Pass, "route_require", "", "route %s lets through only sessions meeting its require conditions", r.Prefix)
		}
		if len(r.Identity.Headers) == 0 {
			continue
		}
		if r.Token == config.TokenNone || r.Token == config.TokenClient {
			d.addf(Warn, "route_identity", "use token: user, optional_user or user_or_client on a route with identity headers",
				"route %s sets identity headers but token: %s never loads the user's session: the headers are never sent", r.Prefix, r.Token)
		}
		private, why := privateUpstream(r.Upstream)
		switch {
		case private:
			d.addf(Pass, "route_identity", "", "route %s sends identity headers to %s, %s", r.Prefix, r.Upstream, why)
		case r.Identity.Assertion:
			d.addf(Info, "route_identity", "have the API verify X-Gatehouse-Assertion (apiauth) and ignore the plain headers",
				"route %s sends identity headers to %s, which is %s; the signed assertion travels with them", r.Prefix, r.Upstream, why)
		default:
			d.addf(Warn, "route_identity", "set identity.assertion: true and have the API verify it (apiauth), or keep the API on a private network that only Gatehouse reaches",
				"route %s sends identity headers to %s, which is %s: anything else that reaches the API can send the same headers, and the API cannot tell", r.Prefix, r.Upstream, why)
		}
	}
}

// privateUpstream reports whether the upstream URL's host is a loopback or
// private address (resolving names), with the reason in words.
func privateUpstream(upstream string) (bool, string) {
	u, err := url.Parse(upstream)
	if err != nil {
		return false, "not a URL"
	}
	host := u.Hostname()
	if config.IsLoopback(host) {
		return true, "a loopback address"
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return false, "a name this host cannot resolve (so its network cannot be judged)"
		}
		addrs = ips
	}
	var public []string
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsLoopback() && !a.IsPrivate() {
			public = append(public, a.String())
		}
	}
	if len(public) > 0 {
		return false, "on a public address (" + strings.Join(public, ", ") + ")"
	}
	return true, "on a private network"
}
