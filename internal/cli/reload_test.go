package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeReloadsOnSIGHUPAndAdminPost: SIGHUP and POST /admin/reload
// re-read the configuration file; a file that fails validation is refused
// with 409 and the running configuration keeps serving.
func TestServeReloadsOnSIGHUPAndAdminPost(t *testing.T) {
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "first") }))
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "second") }))
	t.Cleanup(first.Close)
	t.Cleanup(second.Close)
	conf := func(upstream, prefix string) string {
		return `
server:  { listen: 127.0.0.1:0, public_url: http://localhost:8080 }
oidc:    { issuer: http://127.0.0.1:1, client_id: spa, client_secret: s }
session: { store: memory }
admin:   { listen: 127.0.0.1:0, token: admin-token-0123456789 }
routes:  [ { prefix: ` + prefix + `, upstream: ` + upstream + `, token: none } ]
`
	}
	p := writeConfig(t, conf(first.URL, "/api/"))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"serve", "--config", p}, &stdout, &stderr) }()
	base := waitFor(t, &stdout, &stderr, `listening\s+(\S+)`)
	adminBase := waitFor(t, &stdout, &stderr, `admin\s+(\S+)`)

	get := func() string {
		req, _ := http.NewRequest("GET", base+"/api/x", nil)
		req.Header.Set("X-CSRF", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	post := func(token string) (int, string) {
		req, _ := http.NewRequest("POST", adminBase+"/admin/reload", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if got := get(); got != "first" {
		t.Fatalf("before reload: %q", got)
	}

	// SIGHUP applies a changed upstream.
	if err := os.WriteFile(p, []byte(conf(second.URL, "/api/")), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); get() != "second"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not apply the new upstream:\n%s", stderr.String())
		}
	}

	// A broken file is refused, with the reason, and changes nothing.
	if err := os.WriteFile(p, []byte(conf(first.URL, "api-without-slash")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := post("admin-token-0123456789"); code != http.StatusConflict || !strings.Contains(body, "reload_refused") || !strings.Contains(body, "prefix") {
		t.Errorf("reload of an invalid file = %d %s; want 409 naming the problem", code, body)
	}
	if got := get(); got != "second" {
		t.Errorf("after a refused reload: %q; want the running configuration", got)
	}
	if code, _ := post("wrong"); code != http.StatusUnauthorized {
		t.Errorf("reload without the admin token = %d; want 401", code)
	}
	if err := os.WriteFile(p, []byte(conf(first.URL, "/api/")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := post("admin-token-0123456789"); code != http.StatusOK || !strings.Contains(body, "reloaded") {
		t.Errorf("reload = %d %s", code, body)
	}
	if got := get(); got != "first" {
		t.Errorf("after POST /admin/reload: %q", got)
	}
	resp, err := http.Get(adminBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`gatehouse_config_reloads_total{result="ok"} 2`, `gatehouse_config_reloads_total{result="refused"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	stop()
	<-done
}

func waitFor(t *testing.T, stdout, stderr *syncBuffer, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return "http://" + m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not print %s:\n%s%s", pattern, stdout.String(), stderr.String())
		}
	}
}
