package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"
)

// App is one more application served by the same gateway: its own
// OpenID client (and provider, if it names another issuer), its own
// session cookie and its own API routes and frontend.
//
// A host-based app has PublicURL, its own origin; a path-based app has
// Path and lives under the top-level server.public_url. Its endpoints are
// at <Path><bff.prefix>/... and its redirect URI is
// <origin><Path><bff.prefix>/callback.
type App struct {
	// Name identifies the app in cookies, metrics, logs and the admin API:
	// [a-z0-9-]{1,32}, unique.
	Name string `yaml:"name"`
	// PublicURL is the app's own origin (host-based). Exclusive with Path.
	PublicURL string `yaml:"public_url"`
	// Path is the app's path under server.public_url, such as "/admin"
	// (path-based). Exclusive with PublicURL.
	Path string `yaml:"path"`
	// OIDC keys left unset inherit the top-level oidc block, the issuer
	// too. A boolean left false inherits the top-level value.
	OIDC OIDC `yaml:"oidc"`
	// Session keys left unset inherit the top-level session block, except
	// cookie_name, whose default is __Host-gatehouse-<name>. The store and
	// its keys are the top-level ones: they cannot differ per app.
	Session Session `yaml:"session"`
	// Routes are absolute paths on the app's origin; a path-based app's lie
	// under its Path.
	Routes   []Route  `yaml:"routes"`
	Frontend Frontend `yaml:"frontend"`
}

var appName = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// ServesTopLevel reports whether the top-level keys configure an app of
// their own: always without apps; with apps, when the top level has
// routes or a frontend.
func (c *Config) ServesTopLevel() bool {
	return len(c.Apps) == 0 || len(c.Routes) > 0 || c.Frontend.Upstream != "" || c.Frontend.StaticDir != ""
}

// Resolve returns the whole configuration app a runs with: top with a's
// keys over it, its endpoints under a.Path, and its own cookie. top must
// have its defaults set.
func (a App) Resolve(top *Config) *Config {
	c := *top
	c.Apps = nil
	origin := strings.TrimSuffix(top.Server.PublicURL, "/")
	if a.PublicURL != "" {
		origin = strings.TrimSuffix(a.PublicURL, "/")
		c.Server.PublicURL = origin
	}
	c.BFF.Prefix = a.Path + top.BFF.Prefix
	c.OIDC = overlay(top.OIDC, a.OIDC)
	if a.OIDC.CallbackPath == "" {
		c.OIDC.CallbackPath = c.BFF.Prefix + "/callback"
	}
	if a.OIDC.PostLogoutRedirectURI == "" {
		c.OIDC.PostLogoutRedirectURI = origin + a.Path + "/"
	}
	shared := top.Session
	c.Session = overlay(top.Session, a.Session)
	c.Session.Store, c.Session.BoltPath, c.Session.RedisURL = shared.Store, shared.BoltPath, shared.RedisURL
	c.Session.Keys, c.Session.KeysFile = shared.Keys, shared.KeysFile
	if a.Session.CookieName == "" {
		c.Session.CookieName = "__Host-gatehouse-" + a.Name
	}
	if a.Session.IdleTimeout == 0 && a.Session.AbsoluteTimeout != 0 && c.Session.IdleTimeout > a.Session.AbsoluteTimeout {
		c.Session.IdleTimeout = a.Session.AbsoluteTimeout
	}
	c.Routes = a.Routes
	c.Frontend = a.Frontend
	return &c
}

// overlay returns base with every field that over sets (is not zero)
// replaced by over's.
func overlay[T any](base, over T) T {
	b, o := reflect.ValueOf(&base).Elem(), reflect.ValueOf(over)
	for i := range b.NumField() {
		if f := o.Field(i); !f.IsZero() {
			b.Field(i).Set(f)
		}
	}
	return base
}

// validateApps reports the problems of c.Apps: names, origins and paths,
// each app's resolved configuration, and routes that two apps would share.
// A problem also in top, the top level's own, is one of the shared keys:
// it is reported without the app's name, once.
func (c *Config) validateApps(p *problems, top map[string]bool) {
	names := map[string]bool{}
	origins := map[string]string{}
	paths := map[string]string{}
	topOrigin := strings.TrimSuffix(c.Server.PublicURL, "/")
	for i, a := range c.Apps {
		where := fmt.Sprintf("apps[%d]", i)
		if !appName.MatchString(a.Name) {
			p.add("%s.name %q must match [a-z0-9-]{1,32}", where, a.Name)
		} else if names[a.Name] {
			p.add("%s.name %q appears twice", where, a.Name)
		}
		names[a.Name] = true
		where = fmt.Sprintf("apps[%d] (%s)", i, a.Name)
		switch {
		case (a.PublicURL == "") == (a.Path == ""):
			p.add("%s: set public_url (host-based) or path (path-based), not both or neither", where)
		case a.PublicURL != "":
			o := strings.TrimSuffix(a.PublicURL, "/")
			if o == topOrigin {
				p.add("%s.public_url %q is the top-level server.public_url: use path for an app on that origin", where, a.PublicURL)
			} else if other, ok := origins[o]; ok {
				p.add("%s.public_url %q is also app %s's", where, a.PublicURL, other)
			}
			origins[o] = a.Name
		default:
			if u, err := url.Parse(a.Path); err != nil || !strings.HasPrefix(a.Path, "/") || strings.HasSuffix(a.Path, "/") ||
				strings.Contains(a.Path, "//") || strings.Contains(a.Path, "..") || u.Path != a.Path || u.RawQuery != "" {
				p.add("%s.path %q must be a clean path such as /admin, without a trailing slash", where, a.Path)
			} else if other, ok := paths[a.Path]; ok {
				p.add("%s.path %q is also app %s's", where, a.Path, other)
			}
			paths[a.Path] = a.Name
			for j, r := range a.Routes {
				if !strings.HasPrefix(r.Prefix, a.Path+"/") {
					p.add("%s.routes[%d].prefix %q must lie under the app's path %s", where, j, r.Prefix, a.Path)
				}
			}
		}
		if a.Session.Store != "" || a.Session.BoltPath != "" || a.Session.RedisURL != "" || len(a.Session.Keys) > 0 || a.Session.KeysFile != "" {
			p.add("%s.session: store, bolt_path, redis_url, keys and keys_file are the top level's; they cannot differ per app", where)
		}
		if err := a.Resolve(c).validateOne(); err != nil {
			for _, e := range unjoin(err) {
				if top[e.Error()] {
					*p = append(*p, e)
				} else {
					p.add("%s: %v", where, e)
				}
			}
		}
	}
	// The top-level app's routes must not hide under a path-based app.
	if c.ServesTopLevel() {
		for i, r := range c.Routes {
			for path, name := range paths {
				if strings.HasPrefix(r.Prefix, path+"/") {
					p.add("routes[%d].prefix %q lies under app %s's path %s", i, r.Prefix, name, path)
				}
			}
		}
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{errors.Unwrap(err)}
}
