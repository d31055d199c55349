package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envChild makes the test binary run main itself: the tests below start it
// as a separate process, so that a real SIGTERM reaches a real main.
const envChild = "GATEHOUSE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestSIGTERMDrainsAndExitsZero runs the gateway the way a container
// runtime does: as PID 1 of a PID namespace where the test may create one
// (a PID 1 gets no default signal action, so only a handled SIGTERM stops
// it), otherwise as a plain child. On SIGTERM it must finish the request in
// flight, refuse new ones, and exit 0. internal/cli's
// TestServeDrainsInFlightRequestsOnShutdown proves the drain itself through
// a cancelled context; this test proves main turns the signal into that.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "slow answer")
	}))
	t.Cleanup(api.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	dir := t.TempDir()
	secret := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secret, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfg, []byte(`
server:  { listen: 127.0.0.1:0, public_url: http://localhost:8080, shutdown_timeout: 30s }
oidc:    { issuer: http://127.0.0.1:1, client_id: spa, client_secret_file: `+secret+` }
session: { store: memory }
admin:   { listen: "off" }
routes:  [ { prefix: /api/, upstream: `+api.URL+`, token: none } ]
`), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd, pidNS := startChild(t, "serve", "--config", cfg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil && pidNS {
		// No permission for a PID namespace: run as a plain child.
		t.Logf("no PID namespace (%v): running gatehouse as a plain child", err)
		cmd, _ = startChild(t, "serve", "--config", cfg)
		cmd.SysProcAttr = nil
		if stdout, err = cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = &stderr
		err = cmd.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	if nspid := nsPID(cmd.Process.Pid); nspid != "" {
		t.Logf("gatehouse runs as pid %s in its namespace", nspid)
	}

	base, err := listenAddr(stdout)
	if err != nil {
		t.Fatalf("gatehouse did not start: %v\n%s", err, stderr.String())
	}
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/api/slow", nil)
		req.Header.Set("X-CSRF", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-started:
	case <-exited:
		t.Fatalf("gatehouse exited before the request reached the upstream: %v\n%s", waitErr, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once the drain began.
	client := &http.Client{Timeout: 2 * time.Second}
	refused := false
	for range 250 {
		resp, err := client.Get(base + "/bff/healthz")
		if err != nil {
			refused = true
			break
		}
		resp.Body.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if !refused {
		t.Error("gatehouse still accepts new connections after SIGTERM")
	}
	select {
	case <-exited:
		t.Fatalf("gatehouse exited with a request in flight: %v\n%s", waitErr, stderr.String())
	default:
	}
	close(release)
	if r := <-res; r.err != nil || r.status != http.StatusOK || r.body != "slow answer" {
		t.Errorf("request in flight at SIGTERM: %d %q %v", r.status, r.body, r.err)
	}
	// A bound against a hang only: the drain has nothing left to wait for.
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("gatehouse after SIGTERM: %v; want exit status 0\n%s", waitErr, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Errorf("gatehouse did not exit after SIGTERM and a finished drain\n%s", stderr.String())
	}
}

// startChild prepares the test binary to run main with args, in a new PID
// namespace on Linux; pidNS reports whether it asked for one.
func startChild(t *testing.T, args ...string) (cmd *exec.Cmd, pidNS bool) {
	cmd = exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envChild+"=1")
	cmd.SysProcAttr = pidNamespace()
	return cmd, cmd.SysProcAttr != nil
}

var listening = regexp.MustCompile(`listening\s+(\S+)`)

// listenAddr reads the banner until it names the main listener, and keeps
// draining the output afterwards so the child never blocks on it.
func listenAddr(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, r)
			return "http://" + m[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("output ended without a listening line")
}

// nsPID returns the process's pid inside its innermost PID namespace, from
// /proc, or "" when that is not known.
func nsPID(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" {
			return f[len(f)-1]
		}
	}
	return ""
}
