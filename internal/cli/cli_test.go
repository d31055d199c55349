package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckListsEveryProblem(t *testing.T) {
	p := writeConfig(t, `
server:  { public_url: http://app.example.com }
oidc:    { issuer: https://id.example.com }
session: { store: bolt, cookie_name: sid }
`)
	code, _, stderr := run("check", "--config", p)
	if code == 0 {
		t.Fatal("check accepted a broken configuration")
	}
	for _, want := range []string{"plain http on a non-loopback host", "client_id is required", "client_secret", "session.keys is required", "__Host-"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr)
		}
	}
}

func TestCheckNamesUnknownKeys(t *testing.T) {
	p := writeConfig(t, "server:\n  lisen: 127.0.0.1:8080\n")
	code, _, stderr := run("check", "--config", p)
	if code == 0 || !strings.Contains(stderr, `line 2: unknown key "server.lisen"`) {
		t.Errorf("code %d, output:\n%s", code, stderr)
	}
}

func TestCheckAcceptsAValidConfiguration(t *testing.T) {
	// check now also contacts the provider: a development setup (plain http
	// on localhost, memory store) is valid and earns warnings, exit code 1.
	op := hostileop.New(t)
	t.Setenv("CS", "secret")
	p := writeConfig(t, `
server:  { public_url: http://localhost:8080 }
oidc:    { issuer: `+op.URL+`, client_id: spa, client_secret: ${CS} }
session: { store: memory }
routes:  [ { prefix: /api/, upstream: http://127.0.0.1:9001 } ]
`)
	if code, stdout, stderr := run("check", "--config", p); code != 1 || !strings.Contains(stdout, "valid") || strings.Contains(stdout, "FAIL") {
		t.Errorf("code %d\n%s%s", code, stdout, stderr)
	}
}

func TestServeRefusesPlainHTTPPublicURL(t *testing.T) {
	p := writeConfig(t, `
server:  { public_url: http://app.example.com }
oidc:    { issuer: https://id.example.com, client_id: spa, client_secret: x }
session: { store: memory }
`)
	code, _, stderr := run("serve", "--config", p)
	if code == 0 || !strings.Contains(stderr, "plain http") {
		t.Errorf("serve with a plain-http public URL: code %d\n%s", code, stderr)
	}
}

func TestKeysGenerateAndVersion(t *testing.T) {
	code, out, _ := run("keys", "generate", "k1")
	if code != 0 || !strings.HasPrefix(out, "k1:") || len(strings.TrimSpace(out)) != 3+43 {
		t.Errorf("keys generate = %d %q", code, out)
	}
	if code, out, _ := run("version"); code != 0 || !strings.HasPrefix(out, "gatehouse ") {
		t.Errorf("version = %d %q", code, out)
	}
	if code, _, _ := run("bogus"); code != 2 {
		t.Errorf("unknown command exit code = %d, want 2", code)
	}
}
