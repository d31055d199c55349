package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const authzYAML = `
server:   { public_url: https://app.example.com }
oidc:     { issuer: https://id.example.com, client_id: my-spa, client_secret: s }
session:  { store: memory }
identity: { signing_key_file: /etc/gatehouse/assertion.pem }
routes:
  - prefix: /api/admin/
    upstream: http://10.0.0.5:8080
    require:
      claims: { groups: [admins, ops], email_verified: true, level: 2 }
      scopes: [admin:write]
      acr: [urn:example:mfa]
      max_age: 15m
    identity:
      headers: { X-User-Id: sub, X-User-Email: email }
      assertion: true
    forward_cookies: [locale]
`

func TestParseRouteAuthorization(t *testing.T) {
	cfg, err := Parse([]byte(authzYAML), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if got := r.Require.Claims["groups"]; !slices.Equal(got, []string{"admins", "ops"}) {
		t.Errorf("claims.groups = %q", got)
	}
	// A scalar is a list of one, keeping its YAML text.
	if got := r.Require.Claims["email_verified"]; !slices.Equal(got, []string{"true"}) {
		t.Errorf("claims.email_verified = %q, want [true]", got)
	}
	if got := r.Require.Claims["level"]; !slices.Equal(got, []string{"2"}) {
		t.Errorf("claims.level = %q, want [2]", got)
	}
	if r.Require.MaxAge != 15*time.Minute || !slices.Equal(r.Require.Scopes, []string{"admin:write"}) || !slices.Equal(r.Require.ACR, []string{"urn:example:mfa"}) {
		t.Errorf("require = %+v", r.Require)
	}
	if r.Identity.Headers["X-User-Email"] != "email" || !r.Identity.Assertion || !slices.Equal(r.ForwardCookies, []string{"locale"}) {
		t.Errorf("identity = %+v, forward_cookies = %q", r.Identity, r.ForwardCookies)
	}
	if cfg.Identity.SigningKeyFile != "/etc/gatehouse/assertion.pem" {
		t.Errorf("identity.signing_key_file = %q", cfg.Identity.SigningKeyFile)
	}
}

func TestValidateRouteAuthorization(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"empty claim name", func(c *Config) { c.Routes[0].Require.Claims = map[string][]string{"": {"x"}} }, "claim name is empty"},
		{"claim without values", func(c *Config) { c.Routes[0].Require.Claims = map[string][]string{"groups": nil} }, "lists no value"},
		{"negative max_age", func(c *Config) { c.Routes[0].Require.MaxAge = -time.Minute }, "max_age must be positive"},
		{"scope with a space", func(c *Config) { c.Routes[0].Require.Scopes = []string{"a b"} }, "is not a scope"},
		{"header not a token", func(c *Config) { c.Routes[0].Identity.Headers = map[string]string{"X User": "sub"} }, "not a valid header name"},
		{"hop-by-hop header", func(c *Config) { c.Routes[0].Identity.Headers = map[string]string{"Connection": "sub"} }, "Gatehouse or HTTP itself sets"},
		{"authorization header", func(c *Config) { c.Routes[0].Identity.Headers = map[string]string{"authorization": "sub"} }, "Gatehouse or HTTP itself sets"},
		{"cookie header", func(c *Config) { c.Routes[0].Identity.Headers = map[string]string{"Cookie": "sub"} }, "Gatehouse or HTTP itself sets"},
		{"gatehouse header", func(c *Config) { c.Routes[0].Identity.Headers = map[string]string{"X_Gatehouse_Assertion": "sub"} }, "Gatehouse or HTTP itself sets"},
		{"same header twice", func(c *Config) { c.Routes[0].Identity.Headers = map[string]string{"X-User": "sub", "x_user": "email"} }, "name the same header"},
		{"header without claim", func(c *Config) { c.Routes[0].Identity.Headers = map[string]string{"X-User": ""} }, "names no claim"},
		{"gatehouse cookie forwarded", func(c *Config) { c.Routes[0].ForwardCookies = []string{"__Host-gatehouse-tx-1"} }, "is a Gatehouse cookie"},
		{"bad cookie name", func(c *Config) { c.Routes[0].ForwardCookies = []string{"a;b"} }, "not a cookie name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(authzYAML), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(cfg)
			err = cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want a problem containing %q", err, tc.want)
			}
		})
	}
}

func TestAppRouteClaimScalar(t *testing.T) {
	yml := authzYAML + `
apps:
  - name: admin
    path: /admin
    routes:
      - prefix: /admin/api/
        upstream: http://10.0.0.6:8080
        require: { claims: { role: admin } }
`
	cfg, err := Parse([]byte(yml), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Apps[0].Routes[0].Require.Claims["role"]; !slices.Equal(got, []string{"admin"}) {
		t.Errorf("apps[0].routes[0].require.claims.role = %q, want [admin]", got)
	}
}

// The signing key is per gateway, headers and assertion per route: each
// key anywhere else is unknown.
func TestIdentityKeysInTheirPlace(t *testing.T) {
	for _, yml := range []string{
		strings.Replace(authzYAML, "assertion: true", "assertion: true\n      signing_key_file: k.pem", 1),
		strings.Replace(authzYAML, "identity: { signing_key_file", "identity: { headers: { X-User: sub }, signing_key_file", 1),
	} {
		if _, err := Parse([]byte(yml), env(nil)); err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("Parse = %v, want an unknown key", err)
		}
	}
}
