package config

import (
	"strings"
	"testing"
	"time"
)

// The configuration of the multi-app issue, as a user would write it.
const appsYAML = `
server: { public_url: https://portal.example.com }
oidc: { issuer: https://login.example.com, client_id: portal, client_secret: top-secret, userinfo: true }
session: { store: memory, idle_timeout: 20m }
apps:
  - name: shop
    public_url: https://shop.example.com
    oidc: { client_id: shop-spa, client_secret: "${SHOP_SECRET}" }
    routes: [ { prefix: /api/, upstream: http://orders:8080, token: user } ]
    frontend: { upstream: http://shop-web:5173 }
  - name: admin
    path: /admin
    oidc: { issuer: https://login.partner.example, client_id: admin, client_secret: admin-secret }
    session: { cookie_name: __Host-gatehouse-admin, same_site: strict, idle_timeout: 10m }
    routes: [ { prefix: /admin/api/, upstream: http://admin-api:8080, token: user } ]
    frontend: { static_dir: ./admin-dist }
`

func TestAppsResolveWithInheritance(t *testing.T) {
	cfg, err := Parse([]byte(appsYAML), env(map[string]string{"SHOP_SECRET": "shop-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the issue's example is refused: %v", err)
	}
	if cfg.ServesTopLevel() {
		t.Error("top level without routes or frontend serves an app of its own")
	}
	shop, admin := cfg.Apps[0].Resolve(cfg), cfg.Apps[1].Resolve(cfg)
	checks := []struct {
		name      string
		got, want any
	}{
		{"shop origin", shop.Server.PublicURL, "https://shop.example.com"},
		{"shop issuer inherited", shop.OIDC.Issuer, "https://login.example.com"},
		{"shop client", shop.OIDC.ClientID, "shop-spa"},
		{"shop secret", shop.OIDC.ClientSecret, "shop-secret"},
		{"shop userinfo inherited", shop.OIDC.UserInfo, true},
		{"shop cookie", shop.Session.CookieName, "__Host-gatehouse-shop"},
		{"shop idle inherited", shop.Session.IdleTimeout, 20 * time.Minute},
		{"shop prefix", shop.BFF.Prefix, "/bff"},
		{"shop callback", shop.OIDC.CallbackPath, "/bff/callback"},
		{"shop post logout", shop.OIDC.PostLogoutRedirectURI, "https://shop.example.com/"},
		{"shop route timeout default", shop.Routes[0].Timeout, 30 * time.Second},
		{"admin origin", admin.Server.PublicURL, "https://portal.example.com"},
		{"admin issuer", admin.OIDC.Issuer, "https://login.partner.example"},
		{"admin prefix", admin.BFF.Prefix, "/admin/bff"},
		{"admin callback", admin.OIDC.CallbackPath, "/admin/bff/callback"},
		{"admin post logout", admin.OIDC.PostLogoutRedirectURI, "https://portal.example.com/admin/"},
		{"admin cookie", admin.Session.CookieName, "__Host-gatehouse-admin"},
		{"admin same site", admin.Session.SameSite, "strict"},
		{"admin idle", admin.Session.IdleTimeout, 10 * time.Minute},
		{"admin store shared", admin.Session.Store, StoreMemory},
		{"admin static dir", admin.Frontend.StaticDir, "./admin-dist"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(shop.Apps) != 0 || len(cfg.Apps) != 2 {
		t.Error("Resolve changed the configuration or kept the apps")
	}
}

func TestAppsValidation(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"both origin and path", "apps: [ { name: a, public_url: https://a.example, path: /a } ]", "not both or neither"},
		{"neither", "apps: [ { name: a } ]", "not both or neither"},
		{"bad name", "apps: [ { name: Shop_1, path: /a } ]", "must match"},
		{"duplicate name", "apps: [ { name: a, path: /a }, { name: a, path: /b } ]", "appears twice"},
		{"duplicate path", "apps: [ { name: a, path: /a }, { name: b, path: /a } ]", "is also app a's"},
		{"duplicate origin", "apps: [ { name: a, public_url: https://a.example }, { name: b, public_url: https://a.example } ]", "is also app a's"},
		{"top origin", "apps: [ { name: a, public_url: https://portal.example.com } ]", "use path"},
		{"unclean path", "apps: [ { name: a, path: /a/ } ]", "clean path"},
		{"route outside path", "apps: [ { name: a, path: /a, routes: [ { prefix: /api/, upstream: http://x } ] } ]", "must lie under the app's path"},
		{"per-app store", "apps: [ { name: a, path: /a, session: { store: redis } } ]", "cannot differ per app"},
		{"plain http origin", "apps: [ { name: a, public_url: http://a.example } ]", "plain http"},
		{"top route under app", "routes: [ { prefix: /a/api/, upstream: http://x } ]\napps: [ { name: a, path: /a } ]", "lies under app a's path"},
		{"app without client", "apps: [ { name: a, path: /a, oidc: { issuer: http://x.example } } ]", "apps[0] (a): oidc.issuer \"http://x.example\" uses plain http"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := "server: { public_url: https://portal.example.com }\noidc: { issuer: https://login.example.com, client_id: portal, client_secret: s }\nsession: { store: memory }\n"
			cfg, err := Parse([]byte(base+tt.yaml), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v; want a problem mentioning %q", err, tt.want)
			}
		})
	}
}

func TestAppProblemsAreReportedOnce(t *testing.T) {
	cfg, err := Parse([]byte("server: { public_url: https://p.example }\noidc: { issuer: https://l.example, client_id: c, client_secret: s }\nsession: { store: bolt }\napps: [ { name: a, path: /a }, { name: b, path: /b } ]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil || strings.Count(err.Error(), "session.keys is required") != 1 {
		t.Fatalf("Validate = %v; want the missing keys reported once", err)
	}
}
