package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPostgresStore(t *testing.T) {
	const password = "pg-password-3f9a"
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "dsn")
	os.WriteFile(dsnFile, []byte("postgres://gatehouse:"+password+"@db:5432/gatehouse?sslmode=verify-full\n"), 0o600)

	base := "server: { public_url: https://app.example.com }\n" +
		"oidc: { issuer: https://id.example.com, client_id: spa, client_secret: x }\n" +
		"routes: [ { prefix: /api/, upstream: 'http://127.0.0.1:9001' } ]\n"
	withKeys := "session: { store: postgres, keys: ['" + testKey + "'] }\n"

	cfg, err := Parse([]byte(base+withKeys+"postgres: { dsn_file: "+dsnFile+" }\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.Postgres.DSN, password) || strings.HasSuffix(cfg.Postgres.DSN, "\n") {
		t.Errorf("dsn from dsn_file = %q", cfg.Postgres.DSN)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("postgres store with dsn_file rejected: %v", err)
	}

	cfg, err = Parse([]byte(base+withKeys+"postgres: { dsn: 'host=db user=gatehouse password="+password+"' }\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("postgres store with a key=value dsn rejected: %v", err)
	}

	if _, err := Parse([]byte(base+withKeys+"postgres: { dsn: x, dsn_file: "+dsnFile+" }\n"), env(nil)); err == nil {
		t.Error("both dsn and dsn_file accepted")
	}
	if _, err := Parse([]byte(base+withKeys+"postgres: { url: x }\n"), env(nil)); err == nil {
		t.Error("unknown key postgres.url accepted")
	}
	if _, err := Parse([]byte(base+withKeys+"postgres: { dsn_file: "+filepath.Join(dir, "missing")+" }\n"), env(nil)); err == nil {
		t.Error("missing dsn_file accepted")
	}

	for _, tc := range []struct{ name, yml, want string }{
		{"no dsn", withKeys, "postgres.dsn"},
		{"no keys", "session: { store: postgres }\npostgres: { dsn: 'postgres://db/gatehouse' }\n", "session.keys"},
		{"other scheme", withKeys + "postgres: { dsn: 'mysql://gatehouse:" + password + "@db/gatehouse' }\n", "postgres.dsn"},
	} {
		cfg, err := Parse([]byte(base+tc.yml), env(nil))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v; want a problem naming %s", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("%s: Validate quotes the dsn's password: %v", tc.name, err)
		}
	}
}
