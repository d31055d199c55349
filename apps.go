package gatehouse

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/gatehouse-bff/gatehouse/internal/proxy"
)

// appSet is one configuration's apps, and how a request finds its app.
type appSet struct {
	all []*app
	// top is the app of the top-level keys, nil when they serve none.
	top *app
	// byHost holds the host-based apps by the host of their origin; paths
	// the path-based ones, longest path first.
	byHost map[string]*app
	paths  []*app
}

// pick returns the app r belongs to: the app whose origin's host is r's
// Host, else the path-based app with the longest path r falls under, else
// the top-level app; nil when there is none. A path that is not in clean
// form belongs to the top-level app, never to a path-based one.
func (s *appSet) pick(r *http.Request) *app {
	if a := s.byHost[strings.ToLower(r.Host)]; a != nil {
		return a
	}
	if len(s.paths) > 0 && proxy.CleanPath(r.URL) {
		for _, a := range s.paths {
			if r.URL.Path == a.path || strings.HasPrefix(r.URL.Path, a.path+"/") {
				return a
			}
		}
	}
	return s.top
}

// build makes the app set of cfg. Apps of prev whose resolved
// configuration is unchanged are kept as they are, so their caches and
// in-flight refreshes carry over; a changed app is built anew.
func (g *Gateway) build(cfg *Config, prev *appSet) (*appSet, error) {
	type spec struct {
		name, path, host string
		cfg              *Config
	}
	var specs []spec
	if cfg.ServesTopLevel() {
		specs = append(specs, spec{cfg: cfg})
	}
	for _, a := range cfg.Apps {
		sp := spec{name: a.Name, path: a.Path, cfg: a.Resolve(cfg)}
		if a.PublicURL != "" {
			u, err := hostOf(a.PublicURL)
			if err != nil {
				return nil, fmt.Errorf("gatehouse: app %s: %w", a.Name, err)
			}
			sp.host = u
		}
		specs = append(specs, sp)
	}
	// Every app's cookies are stripped from every upstream call: on a
	// shared origin the browser sends them all.
	var cookieNames []string
	for _, sp := range specs {
		cookieNames = append(cookieNames, sp.cfg.Session.CookieName)
	}
	gatehouseCookies := func(name string) bool {
		for _, c := range cookieNames {
			if len(name) >= len(c) && strings.EqualFold(name[:len(c)], c) {
				return true
			}
		}
		return false
	}
	set := &appSet{byHost: map[string]*app{}}
	for _, sp := range specs {
		var old *app
		if prev != nil {
			old = prev.named(sp.name)
		}
		a, err := newApp(g, sp.name, sp.cfg, old, gatehouseCookies)
		if err != nil {
			if sp.name != "" {
				return nil, fmt.Errorf("gatehouse: app %s: %w", sp.name, err)
			}
			return nil, err
		}
		a.path = sp.path
		set.all = append(set.all, a)
		switch {
		case sp.name == "":
			set.top = a
		case sp.host != "":
			set.byHost[sp.host] = a
		default:
			set.paths = append(set.paths, a)
		}
	}
	slices.SortFunc(set.paths, func(a, b *app) int { return len(b.path) - len(a.path) })
	return set, nil
}

func (s *appSet) named(name string) *app {
	for _, a := range s.all {
		if a.name == name {
			return a
		}
	}
	return nil
}

// hostOf returns the lower-case host[:port] of an origin.
func hostOf(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return "", fmt.Errorf("public_url: %w", err)
	}
	return strings.ToLower(u.Host), nil
}

// ErrReloadRefused is returned by Reload for a configuration it does not
// apply; the running configuration keeps serving.
var ErrReloadRefused = errors.New("gatehouse: reload refused")

// Reload applies the configuration load returns (config.Load of the
// file, say) while the gateway serves: apps, routes, frontends and each
// app's OpenID and session settings are added, changed or removed.
// Requests in flight finish with the configuration they started with; the
// sessions of apps that remain keep working, and a removed app's sessions
// are no longer accepted anywhere. A configuration that cannot be loaded,
// fails validation, or changes keys only a restart can (listeners, the
// store, the sealing keys, logging, tracing) is refused whole with an
// error wrapping ErrReloadRefused that names them. Every outcome is
// counted in gatehouse_config_reloads_total{result}.
func (g *Gateway) Reload(load func() (*Config, error)) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	cfg, err := load()
	if err != nil {
		err = fmt.Errorf("%w: the configuration cannot be read: %w", ErrReloadRefused, err)
	} else {
		err = g.reload(cfg)
	}
	result := "ok"
	if err != nil {
		result = "refused"
	}
	g.sh.metrics.ConfigReload(result)
	return err
}

func (g *Gateway) reload(cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: invalid configuration: %w", ErrReloadRefused, err)
	}
	if keys := fixedKeysChanged(g.sh.cfg, cfg); len(keys) > 0 {
		return fmt.Errorf("%w: these keys change only with a restart: %s", ErrReloadRefused, strings.Join(keys, ", "))
	}
	prev := g.apps.Load()
	set, err := g.build(cfg, prev)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrReloadRefused, err)
	}
	g.apps.Store(set)
	// A removed app's sessions are accepted nowhere: what they hold open
	// closes too.
	for _, a := range prev.all {
		if set.named(a.name) == nil {
			g.sh.streams.EndApp(a.name, "app_removed")
		}
	}
	return nil
}

// fixedKeysChanged names the keys of next that differ from running's and
// that only a restart applies.
func fixedKeysChanged(running, next *Config) []string {
	var out []string
	diff := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, name)
		}
	}
	rs, ns := running.Server, next.Server
	diff("server.listen", rs.Listen, ns.Listen)
	diff("server.tls_cert", rs.TLSCert, ns.TLSCert)
	diff("server.tls_key", rs.TLSKey, ns.TLSKey)
	diff("server.read_header_timeout", rs.ReadHeaderTimeout, ns.ReadHeaderTimeout)
	diff("server.idle_timeout", rs.IdleTimeout, ns.IdleTimeout)
	diff("server.write_timeout", rs.WriteTimeout, ns.WriteTimeout)
	diff("server.max_header_bytes", rs.MaxHeaderBytes, ns.MaxHeaderBytes)
	diff("server.max_body_bytes", rs.MaxBodyBytes, ns.MaxBodyBytes)
	diff("server.shutdown_timeout", rs.ShutdownTimeout, ns.ShutdownTimeout)
	diff("server.trusted_proxies", rs.TrustedProxies, ns.TrustedProxies)
	diff("server.health_path", rs.HealthPath, ns.HealthPath)
	diff("server.ready_path", rs.ReadyPath, ns.ReadyPath)
	diff("server.rate_limit", rs.RateLimit, ns.RateLimit)
	diff("session.store", running.Session.Store, next.Session.Store)
	diff("session.bolt_path", running.Session.BoltPath, next.Session.BoltPath)
	diff("session.redis_url", running.Session.RedisURL, next.Session.RedisURL)
	diff("session.keys", running.Session.Keys, next.Session.Keys)
	diff("redis", running.Redis, next.Redis)
	diff("admin", running.Admin, next.Admin)
	diff("tracing", running.Tracing, next.Tracing)
	diff("log", running.Log, next.Log)
	diff("oidc.timeout", running.OIDC.Timeout, next.OIDC.Timeout)
	return out
}
