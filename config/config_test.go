package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const testKey = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseExpandsEnvironmentAndAppliesDefaults(t *testing.T) {
	yml := `
server: { listen: 127.0.0.1:8080, public_url: http://localhost:8080 }
oidc:   { issuer: https://id.example.com, client_id: spa, client_secret: "${CLIENT_SECRET}" }
session: { store: bolt, keys: ["${KEY}"] }
routes: [ { prefix: /api/, upstream: http://127.0.0.1:9001 } ]
`
	cfg, err := Parse([]byte(yml), env(map[string]string{"CLIENT_SECRET": "s3cr$t: #x", "KEY": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OIDC.ClientSecret != "s3cr$t: #x" {
		t.Errorf("client_secret = %q, want the variable's value verbatim", cfg.OIDC.ClientSecret)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"bff.prefix", cfg.BFF.Prefix, "/bff"},
		{"csrf header", cfg.BFF.CSRFHeader, "X-CSRF"},
		{"callback", cfg.OIDC.CallbackPath, "/bff/callback"},
		{"idle", cfg.Session.IdleTimeout, 30 * time.Minute},
		{"absolute", cfg.Session.AbsoluteTimeout, 8 * time.Hour},
		{"cookie", cfg.Session.CookieName, "__Host-gatehouse"},
		{"max per user", cfg.Session.MaxPerUser, 50},
		{"same_site", cfg.Session.SameSite, "lax"},
		{"route token", string(cfg.Routes[0].Token), "user"},
		{"bolt path", cfg.Session.BoltPath, "./gatehouse.db"},
		{"post logout", cfg.OIDC.PostLogoutRedirectURI, "http://localhost:8080/"},
		{"revoke", *cfg.OIDC.RevokeOnLogout, true},
		{"scopes", strings.Join(cfg.OIDC.Scopes, " "), "openid profile offline_access"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseRejectsUnknownKeysWithLine(t *testing.T) {
	yml := "server:\n  listen: 127.0.0.1:8080\n  public_ur1: http://localhost\nsession:\n  idle_timout: 5m\nbogus: 1\n"
	_, err := Parse([]byte(yml), env(nil))
	if err == nil {
		t.Fatal("Parse accepted unknown keys")
	}
	for _, want := range []string{`line 3: unknown key "server.public_ur1" (did you mean "public_url"?)`, `line 5: unknown key "session.idle_timout"`, `line 6: unknown key "bogus"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestParseRejectsUnsetVariable(t *testing.T) {
	_, err := Parse([]byte("oidc: { client_secret: ${NOPE} }\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "NOPE is not set") {
		t.Fatalf("err = %v, want unset variable error", err)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	keys := filepath.Join(dir, "keys")
	os.WriteFile(secret, []byte("from-file\n"), 0o600)
	os.WriteFile(keys, []byte("# primary first\n"+testKey+"\n\n"), 0o600)
	yml := "oidc: { client_secret_file: " + secret + " }\nsession: { keys_file: " + keys + " }\n"
	cfg, err := Parse([]byte(yml), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OIDC.ClientSecret != "from-file" {
		t.Errorf("client secret = %q", cfg.OIDC.ClientSecret)
	}
	if len(cfg.Session.Keys) != 1 || cfg.Session.Keys[0] != testKey {
		t.Errorf("keys = %q", cfg.Session.Keys)
	}
	if _, err := Parse([]byte("oidc: { client_secret: x, client_secret_file: "+secret+" }\n"), env(nil)); err == nil {
		t.Error("both client_secret and client_secret_file accepted")
	}
}

func valid() *Config {
	c := &Config{
		Server:  Server{PublicURL: "https://app.example.com"},
		OIDC:    OIDC{Issuer: "https://id.example.com", ClientID: "spa", ClientSecret: "x"},
		Session: Session{Store: "memory"},
		Routes:  []Route{{Prefix: "/api/", Upstream: "http://127.0.0.1:9001"}},
	}
	c.SetDefaults()
	return c
}

func TestValidateReportsEveryProblem(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	c := valid()
	c.Server.PublicURL = "http://app.example.com"
	c.OIDC.ClientSecret = ""
	c.Session.CookieName = "gatehouse"
	c.Session.Store = "bolt"
	c.Routes = append(c.Routes, Route{Prefix: "/api/", Upstream: "ftp://x", Token: "bearer"})
	c.OIDC.SigningAlgs = []string{"HS256"}
	c.Session.IdleTimeout = 9 * time.Hour
	c.Session.MaxPerUser = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	var n int
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		n = len(j.Unwrap())
	}
	for _, want := range []string{"plain http on a non-loopback host", "client_secret", "__Host-", "session.keys is required", "appears twice", "ftp://x", `"bearer"`, "HS256", "idle_timeout", "max_per_user"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if n < 10 {
		t.Errorf("got %d problems, want every one reported at once", n)
	}
}

func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://localhost:8080", true},
		{"http://127.0.0.1:8080", true},
		{"http://[::1]:8080", true},
		{"http://app.localhost", true},
		{"https://app.example.com", true},
		{"http://app.example.com", false},
		{"http://10.0.0.1", false},
		{"http://localhost.example.com", false},
		{"https://app.example.com/path", false},
	} {
		c := valid()
		c.Server.PublicURL = tc.url
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("public_url %q: err = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestValidateDoesNotChangeConfig(t *testing.T) {
	c := valid()
	before := *c
	c.Validate()
	if c.BFF.Prefix != before.BFF.Prefix || c.Session.Store != before.Session.Store || c.OIDC.Issuer != before.OIDC.Issuer {
		t.Error("Validate changed the configuration")
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("server: { listen: 127.0.0.1:8080 }\n"))
	f.Add([]byte("routes: [ { prefix: /api/, upstream: http://x } ]\noidc: { scopes: [a, b] }\n"))
	f.Add([]byte("session: { idle_timeout: 5m, keys: [\"${K}\"] }\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("{{{"))
	f.Add([]byte("routes: [ { prefix: /a/, upstream: http://x, require: { claims: { g: [a, b], v: true, n: ~ }, max_age: 5m }, identity: { headers: { X-U: sub } } } ]\n"))
	f.Add([]byte("routes: [ { require: { claims: &c { g: a } } }, { require: { claims: *c } } ]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, env(map[string]string{"K": testKey}))
		if err != nil {
			return
		}
		// A parsed configuration always has its defaults and validates
		// without panicking.
		if cfg.BFF.Prefix == "" || cfg.Session.CookieName == "" {
			t.Fatal("defaults not applied")
		}
		cfg.Validate()
	})
}

func TestExpandedValuesTakeTheFieldType(t *testing.T) {
	yml := "oidc: { client_secret: ${S}, userinfo: ${U} }\nsession: { idle_timeout: ${I} }\n"
	cfg, err := Parse([]byte(yml), env(map[string]string{"S": "12345", "U": "true", "I": "5m"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OIDC.ClientSecret != "12345" || !cfg.OIDC.UserInfo || cfg.Session.IdleTimeout != 5*time.Minute {
		t.Errorf("got secret %q userinfo %v idle %v", cfg.OIDC.ClientSecret, cfg.OIDC.UserInfo, cfg.Session.IdleTimeout)
	}
}

func TestPerRouteTokenSettings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route Route
		want  string // "" = valid
	}{
		{"exchange with resource", Route{Token: "user", TokenExchange: true, Resource: "https://api.example"}, ""},
		{"exchange without target", Route{Token: "user", TokenExchange: true}, "needs a resource or an audience"},
		{"exchange on client route", Route{Token: "client", TokenExchange: true, Audience: "api"}, "needs token: user"},
		{"resource on user route without exchange", Route{Token: "user", Resource: "https://api.example"}, "need token_exchange"},
		{"resource on client route", Route{Token: "client", Resource: "https://api.example"}, ""},
	} {
		c := valid()
		tc.route.Prefix, tc.route.Upstream = "/b/", "http://127.0.0.1:1"
		c.Routes = append(c.Routes, tc.route)
		err := c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// FuzzValidateWithoutDefaults: a configuration built in code, with any
// field set or left zero and no defaults applied, validates without
// panicking and is refused unless it is complete.
func FuzzValidateWithoutDefaults(f *testing.F) {
	f.Add([]byte("server: { public_url: https://app.example }\noidc: { issuer: https://id.example, client_id: c }\n"))
	f.Add([]byte("session: { store: redis }\nroutes: [ { prefix: /api/ } ]\n"))
	f.Add([]byte("oidc: { revoke_on_logout: false, dpop: off }\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg Config
		if yaml.Unmarshal(data, &cfg) != nil {
			return
		}
		cfg.Validate()
		cfg.OIDC.RevokesOnLogout()
		cfg.Session.SameSiteMode()
	})
}

func TestZeroConfigIsRefusedWithoutPanicking(t *testing.T) {
	var cfg Config
	if err := cfg.Validate(); err == nil {
		t.Fatal("an empty configuration validated")
	}
	if !cfg.OIDC.RevokesOnLogout() {
		t.Error("revoke_on_logout unset should mean true")
	}
}

// TestDefaultsYieldToWhatIsSet: an absolute timeout shorter than the
// default idle timeout is accepted, and the idle timeout follows it.
func TestDefaultsYieldToWhatIsSet(t *testing.T) {
	yml := `
server: { public_url: http://localhost:8080 }
oidc: { issuer: http://127.0.0.1:9999, client_id: c, client_secret: s }
session: { store: memory, absolute_timeout: 15m }
`
	cfg, err := Parse([]byte(yml), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("absolute_timeout 15m alone refused: %v", err)
	}
	if cfg.Session.IdleTimeout != 15*time.Minute || cfg.Session.AbsoluteTimeout != 15*time.Minute {
		t.Errorf("idle %v absolute %v; want 15m both", cfg.Session.IdleTimeout, cfg.Session.AbsoluteTimeout)
	}
	cfg, err = Parse([]byte(strings.Replace(yml, "absolute_timeout: 15m", "idle_timeout: 10h", 1)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || cfg.Session.AbsoluteTimeout != 10*time.Hour {
		t.Errorf("idle_timeout 10h alone: absolute %v, %v; want 10h accepted", cfg.Session.AbsoluteTimeout, err)
	}
}
