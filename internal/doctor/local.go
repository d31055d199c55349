package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-bff/gatehouse/internal/redisconf"
)

// certRenewWarn is how long before expiry a served certificate is flagged.
const certRenewWarn = 14 * 24 * time.Hour

// local runs the checks of the whole gateway that need only the
// configuration and this host.
func (d *doctor) local() {
	d.tls()
	d.keys()
	d.admin()
	d.routes()
	d.diagnostics()
}

// uris lists what to register at the provider for one app.
func (d *doctor) uris() {
	cfg := d.cfg
	public := strings.TrimSuffix(cfg.Server.PublicURL, "/")
	client := ""
	if d.app != "" {
		client = " for client " + cfg.OIDC.ClientID
	}
	// RFC 9700 §2.1 / §4.1.3: redirect URIs are compared exactly.
	d.addf(Info, "redirect_uri", "register exactly this URI"+client+" (scheme, host, port and path; no wildcard) at the provider",
		"Gatehouse's redirect URI is %s", public+cfg.OIDC.CallbackPath)
	d.addf(Info, "post_logout_redirect_uri", "register exactly this URI"+client+" as a post-logout redirect URI at the provider",
		"after RP-Initiated Logout the provider sends the browser to %s", cfg.OIDC.PostLogoutRedirectURI)
	// OpenID Connect Back-Channel Logout 1.0 §2.2.
	d.addf(Info, "backchannel_logout_uri", "register this URI"+client+" as the backchannel_logout_uri at the provider, if it offers back-channel logout",
		"the provider posts logout tokens to %s", public+cfg.BFF.Prefix+"/backchannel")
}

// apps warns about apps that share what isolation needs apart: a browser
// origin (path-based apps) or a cookie on one host.
func (d *doctor) apps() {
	us := appsOf(d.cfg)
	for _, u := range us {
		if u.path == "" {
			continue
		}
		d.checks = append(d.checks, Check{ID: "path_based_app", App: u.name, Status: Warn,
			Message: fmt.Sprintf("app %s is path-based (%s under %s): it shares one browser origin with every other app there, so a script injected into any of them can call app %s's routes and endpoints with app %s's session (same-origin requests pass the CSRF checks, and the browser sends every app's cookie on that origin)",
				u.name, u.path, d.cfg.Server.PublicURL, u.name, u.name),
			Fix: fmt.Sprintf("give app %s its own origin with public_url (a host-based app, such as https://%s.example.com) instead of path, and register its URIs there", u.name, u.name)})
	}
	// Cookies are host-only (__Host-): apps on one host with one cookie
	// name overwrite each other's cookie.
	type key struct{ host, cookie string }
	first := map[key]string{}
	label := func(name string) string {
		if name == "" {
			return "the top-level app"
		}
		return "app " + name
	}
	for _, u := range us {
		pub, err := url.Parse(u.cfg.Server.PublicURL)
		if err != nil {
			continue
		}
		k := key{strings.ToLower(pub.Host), u.cfg.Session.CookieName}
		other, ok := first[k]
		if !ok {
			first[k] = u.name
			continue
		}
		d.checks = append(d.checks, Check{ID: "cookie_shared", App: u.name, Status: Warn,
			Message: fmt.Sprintf("%s and %s both use cookie %s on %s: sessions stay apart (a session is accepted only by its own app), but signing in at one overwrites the other's cookie and so signs the user out there",
				label(other), label(u.name), k.cookie, k.host),
			Fix: fmt.Sprintf("drop session.cookie_name from app %s to get its default __Host-gatehouse-%s, or give it a name of its own", u.name, u.name)})
	}
}

// cookie: SECURITY.md cookie rules (browser-based apps BCP §6.1, RFC 6265bis
// cookie prefixes).
func (d *doctor) cookie() {
	s := d.cfg.Session
	if !strings.HasPrefix(s.CookieName, "__Host-") {
		d.addf(Fail, "cookie", "name the cookie __Host-something (session.cookie_name)",
			"the session cookie %q lacks the __Host- prefix: a sibling subdomain could set or shadow it", s.CookieName)
		return
	}
	pub, _ := url.Parse(d.cfg.Server.PublicURL)
	iss, _ := url.Parse(d.cfg.OIDC.Issuer)
	crossSite := pub == nil || iss == nil || pub.Scheme != iss.Scheme || !sameSiteGuess(pub.Hostname(), iss.Hostname())
	switch {
	case s.SameSite == "strict" && crossSite:
		d.addf(Warn, "cookie", "keep strict if the SPA loads its session state with fetch (as with /bff/user); set session.same_site: lax if pages are rendered from the session on navigation",
			"cookie %s is HttpOnly, Secure, host-only, SameSite=Strict; the provider (%s) looks like another site (judged from the last two host labels), so the cookie is not sent on the navigation back from it or from any link on another site: the first page load after login looks signed out",
			s.CookieName, d.cfg.OIDC.Issuer)
	case s.SameSite == "strict":
		d.addf(Pass, "cookie", "",
			"cookie %s is HttpOnly, Secure, host-only, SameSite=Strict; the provider looks like the same site, so its redirects carry the cookie", s.CookieName)
	default:
		d.addf(Pass, "cookie", "",
			"cookie %s is HttpOnly, Secure, host-only, SameSite=Lax: it rides top-level navigations back from a cross-site provider; cross-site requests are refused by the %s header check, not by SameSite (strict would also drop it on links from other sites)",
			s.CookieName, d.cfg.BFF.CSRFHeader)
	}
}

func (d *doctor) tls() {
	cfg := d.cfg.Server
	u, err := url.Parse(cfg.PublicURL)
	if err != nil {
		u = &url.URL{}
	}
	if u.Scheme == "https" {
		d.addf(Pass, "tls", "", "public_url %s uses https", cfg.PublicURL)
	} else {
		d.addf(Warn, "tls", "use an https public_url for anything but development on this machine",
			"public_url %s is plain http on a loopback host: fit for development only (browsers treat localhost as secure, nothing else is)", cfg.PublicURL)
	}

	if cfg.TLSCert == "" {
		msg := "server.tls_cert is not set: Gatehouse serves plain http on " + cfg.Listen
		if u.Scheme == "https" {
			d.add(Info, "tls_listener", msg+" and assumes a reverse proxy or load balancer in front terminates TLS",
				"let only that proxy reach "+cfg.Listen+" and list it in server.trusted_proxies; or set server.tls_cert and server.tls_key")
		} else {
			d.add(Info, "tls_listener", msg, "")
		}
		return
	}
	pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		d.addf(Fail, "tls_listener", "point server.tls_cert and server.tls_key at a readable PEM certificate chain and its private key",
			"cannot load the TLS certificate: %v", err)
		return
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		d.addf(Fail, "tls_listener", "use a valid PEM certificate", "cannot parse the TLS certificate %s: %v", cfg.TLSCert, err)
		return
	}
	now := d.opts.Now()
	left := leaf.NotAfter.Sub(now)
	switch {
	case left <= 0:
		d.addf(Fail, "tls_listener", "renew the certificate; Gatehouse reloads the files when they change",
			"the TLS certificate %s expired on %s", cfg.TLSCert, leaf.NotAfter.UTC().Format(time.DateOnly))
	case left < certRenewWarn:
		d.addf(Warn, "tls_listener", "renew the certificate; Gatehouse reloads the files when they change",
			"the TLS certificate %s expires on %s", cfg.TLSCert, leaf.NotAfter.UTC().Format(time.DateOnly))
	case leaf.VerifyHostname(u.Hostname()) != nil:
		d.addf(Warn, "tls_listener", "use a certificate that names "+u.Hostname()+", unless a proxy in front presents another one",
			"the TLS certificate %s does not name %s", cfg.TLSCert, u.Hostname())
	default:
		d.addf(Pass, "tls_listener", "", "Gatehouse serves HTTPS itself with %s, valid until %s", cfg.TLSCert, leaf.NotAfter.UTC().Format(time.DateOnly))
	}
}

func (d *doctor) keys() {
	s := d.cfg.Session
	if len(s.Keys) == 0 {
		if s.Store == config.StoreMemory {
			d.add(Info, "keys", "no session.keys: the memory store seals sessions with a random per-process key", "")
			return
		}
		d.addf(Fail, "keys", "generate one with `gatehouse keys generate` and put it in session.keys (or keys_file)",
			"session.keys is empty but store %s keeps sessions at rest: tokens would be stored unsealed or lost", s.Store)
		return
	}
	var ids []string
	for _, k := range s.Keys {
		key, err := seal.ParseKey(k)
		if err != nil {
			d.addf(Fail, "keys", "fix or regenerate the key with `gatehouse keys generate`", "a session key does not parse: %v", err)
			return
		}
		ids = append(ids, key.ID)
	}
	if len(ids) == 1 {
		d.addf(Pass, "keys", "",
			"one session sealing key (%s); to rotate, put a new key first and keep %s after it until session.absolute_timeout (%s) has passed", ids[0], ids[0], s.AbsoluteTimeout)
		return
	}
	d.addf(Pass, "keys", "", "%d session sealing keys; new sessions are sealed with %s, the others still open older ones (drop a retired key once session.absolute_timeout, %s, has passed)",
		len(ids), ids[0], s.AbsoluteTimeout)
}

func (d *doctor) admin() {
	a := d.cfg.Admin
	if a.Listen == "off" {
		d.add(Pass, "admin", "the admin listener is off", "")
		return
	}
	host, _, err := net.SplitHostPort(a.Listen)
	switch {
	case err != nil:
		d.addf(Fail, "admin", "set admin.listen to host:port or off", "admin.listen %q is not host:port", a.Listen)
	case config.IsLoopback(host):
		d.addf(Pass, "admin", "", "the admin listener %s is on loopback only", a.Listen)
	case a.Token == "":
		d.addf(Fail, "admin", "set admin.token (or token_file), bind admin.listen to loopback, or set it to off",
			"the admin listener %s is reachable from the network without a token: anyone there can end sessions", a.Listen)
	default:
		d.addf(Warn, "admin", "bind admin.listen to 127.0.0.1 where possible; otherwise restrict it by firewall or network policy and keep the token secret",
			"the admin listener %s is reachable from the network, protected by admin.token only", a.Listen)
	}
}

// store checks that the session store can work.
func (d *doctor) store(ctx context.Context) {
	s := d.cfg.Session
	switch s.Store {
	case "memory":
		d.add(Warn, "store",
			"the memory store loses every session on restart and cannot be shared between replicas: development only",
			"use store: bolt for one instance or store: redis for several")
	case "bolt":
		dir := filepath.Dir(s.BoltPath)
		fi, err := os.Stat(dir)
		switch {
		case err != nil:
			d.addf(Fail, "store", "create the directory, or point session.bolt_path elsewhere",
				"the directory of session.bolt_path %s is not usable: %v", s.BoltPath, err)
		case !fi.IsDir():
			d.addf(Fail, "store", "point session.bolt_path into a directory", "%s (the directory of session.bolt_path) is not a directory", dir)
		default:
			d.addf(Pass, "store", "", "bolt store at %s; one Gatehouse process at a time can open it (use store: redis for several replicas)", s.BoltPath)
		}
	case "redis":
		pinger := d.opts.Store
		if pinger == nil {
			c, err := redisconf.Client(d.cfg, -1)
			if err != nil {
				d.addf(Fail, "store", "fix session.redis_url", "cannot configure the Redis client: %v", err)
				return
			}
			defer c.Close()
			pinger = redisPinger{c}
		}
		pctx, cancel := context.WithTimeout(ctx, d.cfg.Redis.Timeout)
		defer cancel()
		if err := pinger.Ping(pctx); err != nil {
			d.addf(Fail, "store", "check session.redis_url or the redis block (address, password, TLS), and that Redis is up and reachable from this host",
				"the Redis session store does not answer PING: %v", redactRedis(err))
			return
		}
		d.add(Pass, "store", "the Redis session store answers PING", "")
	case config.StorePostgres:
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		pinger := d.opts.Store
		if pinger == nil {
			// A bare connection: the check creates no tables.
			conn, err := pgx.Connect(pctx, d.cfg.Postgres.DSN)
			if err != nil {
				d.addf(Fail, "store", "check postgres.dsn (host, user, password, database, sslmode), and that PostgreSQL is up and reachable from this host",
					"the PostgreSQL session store does not answer: %v", redactPostgres(err))
				return
			}
			defer conn.Close(context.WithoutCancel(pctx))
			pinger = conn
		}
		if err := pinger.Ping(pctx); err != nil {
			d.addf(Fail, "store", "check that PostgreSQL is up and reachable from this host",
				"the PostgreSQL session store does not answer: %v", redactPostgres(err))
			return
		}
		d.add(Pass, "store", "the PostgreSQL session store answers", "")
	}
}

// redactPostgres never shows a DSN that failed to parse, whose password
// the driver can only hide on a best-effort basis.
func redactPostgres(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("postgres.dsn is not a PostgreSQL connection string")
	}
	return err
}

type redisPinger struct{ c redis.UniversalClient }

func (p redisPinger) Ping(ctx context.Context) error { return p.c.Ping(ctx).Err() }

// redactRedis keeps the error's kind without any URL it may quote, which
// could hold the Redis password.
func redactRedis(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// diagnostics warns of the development-only diagnostics endpoint.
func (d *doctor) diagnostics() {
	if !d.cfg.BFF.Diagnostics {
		return
	}
	d.addf(Warn, "diagnostics", "set bff.diagnostics: false anywhere but a developer's machine",
		"bff.diagnostics is on: %s/diagnostics shows loopback callers the session's claims, token metadata, the routes and the provider's settings; development only",
		d.cfg.BFF.Prefix)
}
