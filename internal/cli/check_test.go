package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
)

const checkSecret = "a-client-secret-of-at-least-32-bytes!"

// goodConfig returns a configuration for issuer that the doctor passes:
// https public URL, bolt store with a key, loopback admin listener.
func goodConfig(t *testing.T, issuer, oidcExtra, sessionExtra string) string {
	t.Helper()
	key, err := seal.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEHOUSE_TEST_SECRET", checkSecret)
	return writeConfig(t, fmt.Sprintf(`
server:  { public_url: https://app.example.test }
oidc:    { issuer: %s, client_id: spa, client_secret: "${GATEHOUSE_TEST_SECRET}"%s }
session: { store: bolt, bolt_path: %q, keys: [%q]%s }
`, issuer, oidcExtra, filepath.Join(t.TempDir(), "g.db"), key, sessionExtra))
}

func newOP(t *testing.T) *hostileop.Provider {
	return hostileop.New(t, hostileop.WithClient("spa", checkSecret, "https://app.example.test/bff/callback"))
}

// line matches a checklist line with the given status and check id.
func line(status, id string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + status + `\s+` + regexp.QuoteMeta(id) + `\s`)
}

func TestCheckGoodDeployment(t *testing.T) {
	op := newOP(t)
	code, stdout, stderr := run("check", "--config", goodConfig(t, op.URL, "", ""))
	if code != 0 {
		t.Fatalf("exit code %d, want 0\n%s%s", code, stdout, stderr)
	}
	for _, want := range []*regexp.Regexp{line("PASS", "discovery"), line("PASS", "pkce"), line("PASS", "clock"),
		line("INFO", "redirect_uri"), regexp.MustCompile(`https://app\.example\.test/bff/callback`)} {
		if !want.MatchString(stdout) {
			t.Errorf("output lacks %v:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, checkSecret) {
		t.Error("check output shows the client secret")
	}
}

func TestCheckMisconfigurations(t *testing.T) {
	tests := []struct {
		name          string
		op            func(*hostileop.Provider)
		oidc, session string
		status, id    string
		code          int
	}{
		{name: "pkce without S256", op: func(p *hostileop.Provider) { p.SetCodeChallengeMethods([]string{"plain"}) },
			status: "FAIL", id: "pkce", code: 2},
		{name: "pkce not advertised", op: func(p *hostileop.Provider) { p.SetCodeChallengeMethods(nil) },
			status: "WARN", id: "pkce", code: 1},
		{name: "no RFC 9207 iss", op: func(p *hostileop.Provider) { p.SetIssParam(hostileop.IssParamUnsupported) },
			status: "WARN", id: "iss_parameter", code: 1},
		{name: "no revocation endpoint", op: func(p *hostileop.Provider) { p.SetRevocation(false) },
			status: "WARN", id: "revocation", code: 1},
		{name: "no end-session endpoint", op: func(p *hostileop.Provider) { p.SetEndSession(false) },
			status: "WARN", id: "end_session", code: 1},
		{name: "issuer mismatch", op: func(p *hostileop.Provider) { p.SetDiscoveryIssuer(p.URL + "/other") },
			status: "FAIL", id: "discovery", code: 2},
		{name: "no common signing algorithm", oidc: ", signing_algs: [ES256, EdDSA]",
			status: "FAIL", id: "signing_algs", code: 2},
		{name: "no offline_access", oidc: ", scopes: [openid, email]",
			status: "WARN", id: "refresh_tokens", code: 1},
		{name: "strict cookie with a cross-site provider", session: ", same_site: strict",
			status: "WARN", id: "cookie", code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := newOP(t)
			if tt.op != nil {
				tt.op(op)
			}
			code, stdout, stderr := run("check", "--config", goodConfig(t, op.URL, tt.oidc, tt.session))
			if code != tt.code || !line(tt.status, tt.id).MatchString(stdout) {
				t.Fatalf("exit code %d (want %d), want a %s %s line:\n%s%s", code, tt.code, tt.status, tt.id, stdout, stderr)
			}
			// Every problem line carries its fix on the next line.
			if !regexp.MustCompile(`(?m)^` + tt.status + `\s+` + tt.id + `\s.*\n\s+fix: \S`).MatchString(stdout) {
				t.Errorf("the %s line has no fix:\n%s", tt.id, stdout)
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	op := newOP(t)
	op.SetRevocation(false)
	code, stdout, stderr := run("check", "--json", "--config", goodConfig(t, op.URL, "", ""))
	var report struct {
		Checks []struct {
			ID, Status, Message, Fix string
		}
		Summary struct{ Pass, Info, Warn, Fail int }
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s%s", err, stdout, stderr)
	}
	if code != 1 || report.Summary.Warn != 1 || report.Summary.Fail != 0 || report.Summary.Pass == 0 {
		t.Fatalf("exit code %d, summary %+v", code, report.Summary)
	}
	found := false
	for _, c := range report.Checks {
		if c.ID == "revocation" {
			found = c.Status == "WARN" && c.Message != "" && c.Fix != ""
		}
	}
	if !found {
		t.Errorf("no WARN revocation check with message and fix in %s", stdout)
	}
}

func TestCheckJSONInvalidConfiguration(t *testing.T) {
	p := writeConfig(t, "server:\n  lisen: 127.0.0.1:8080\n")
	code, stdout, _ := run("check", "--json", "--config", p)
	var report struct {
		Checks []struct{ ID, Status, Message string }
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, stdout)
	}
	if code != 2 || len(report.Checks) != 1 || report.Checks[0].Status != "FAIL" || !strings.Contains(report.Checks[0].Message, "server.lisen") {
		t.Fatalf("code %d, report %+v", code, report)
	}
}

func TestCheckUnreachableProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, stdout, stderr := run("check", "--config", goodConfig(t, "http://"+addr, "", ""))
	if code != 2 || !line("FAIL", "discovery").MatchString(stdout) {
		t.Fatalf("exit code %d, want 2 and a FAIL discovery line:\n%s%s", code, stdout, stderr)
	}
}

func TestCheckNeedsConfigFlag(t *testing.T) {
	if code, _, stderr := run("check"); code != 2 || !strings.Contains(stderr, "--config") {
		t.Errorf("check without --config: code %d, %s", code, stderr)
	}
}

// check lists each app's URIs by app name and warns about path-based apps.
func TestCheckApps(t *testing.T) {
	op := hostileop.New(t, hostileop.WithClient("shop", checkSecret), hostileop.WithClient("admin", checkSecret))
	p := goodConfig(t, op.URL, "", "")
	body, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	body = append(body, `apps:
  - { name: shop, public_url: https://shop.example.test, oidc: { client_id: shop } }
  - { name: admin, path: /admin, oidc: { client_id: admin } }
`...)
	code, stdout, stderr := run("check", "--config", writeConfig(t, string(body)))
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (the path-based app's warning)\n%s%s", code, stdout, stderr)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^INFO\s+redirect_uri\s+app shop: .*https://shop\.example\.test/bff/callback`),
		regexp.MustCompile(`(?m)^INFO\s+post_logout_redirect_uri\s+app shop: .*https://shop\.example\.test/$`),
		regexp.MustCompile(`(?m)^INFO\s+backchannel_logout_uri\s+app shop: .*https://shop\.example\.test/bff/backchannel`),
		regexp.MustCompile(`(?m)^INFO\s+redirect_uri\s+app admin: .*https://app\.example\.test/admin/bff/callback`),
		regexp.MustCompile(`(?m)^INFO\s+backchannel_logout_uri\s+app admin: .*https://app\.example\.test/admin/bff/backchannel`),
		regexp.MustCompile(`(?m)^WARN\s+path_based_app\s+app admin is path-based`),
		regexp.MustCompile(`(?m)^PASS\s+discovery\s+app admin: `),
	} {
		if !want.MatchString(stdout) {
			t.Errorf("output lacks %v:\n%s", want, stdout)
		}
	}
	if line("WARN", "path_based_app").FindAllStringIndex(stdout, -1) == nil || strings.Count(stdout, "path_based_app") != 1 {
		t.Errorf("want one path_based_app warning (admin only):\n%s", stdout)
	}
}
