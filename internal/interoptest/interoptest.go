package interoptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultClientID is the client id used when Options.ClientID is empty.
const DefaultClientID = "gatehouse"

// DefaultRedirectURI is the registered redirect URI used when
// Options.RedirectURI is empty.
const DefaultRedirectURI = "http://127.0.0.1:8080/bff/callback"

// startTimeout bounds how long Start waits for the provider's READY line.
// It only turns a hung start into a failure; no test result depends on it.
const startTimeout = 60 * time.Second

// installTimeout bounds npm ci.
const installTimeout = 5 * time.Minute

// Options configure the provider's single confidential client and its test
// behaviour. The zero value is usable.
type Options struct {
	// ClientID is the client's id; empty means DefaultClientID.
	ClientID string
	// ClientSecret is the client_secret_basic secret; empty means a random one
	// (read it back with Provider.Options).
	ClientSecret string
	// RedirectURI is the registered redirect URI (several may be given,
	// separated by commas); empty means DefaultRedirectURI.
	RedirectURI string
	// PostLogoutRedirectURI is the registered post_logout_redirect_uri
	// (comma-separated for several); empty registers none.
	PostLogoutRedirectURI string
	// BackchannelLogoutURI is the client's backchannel_logout_uri, registered
	// with backchannel_logout_session_required true; empty registers none.
	BackchannelLogoutURI string
	// AutoLoginSub, when set, makes every login complete without a form as
	// this subject (an authorization request's login_hint picks another
	// subject). Empty means the provider shows an HTML login form.
	AutoLoginSub string
	// AccessTokenTTL is the access token lifetime, rounded up to whole
	// seconds; zero means the provider default of 300 seconds.
	AccessTokenTTL time.Duration
	// RefreshTokensOnlyWithOfflineAccess makes the provider issue refresh
	// tokens only when offline_access was granted (which OpenID Connect
	// Core §11 ties to prompt=consent). By default every code grant gets one.
	RefreshTokensOnlyWithOfflineAccess bool
	// Resources are resource indicators (RFC 8707) the provider issues JWT
	// access tokens for (RFC 9068: typ at+jwt, ES256, aud the indicator,
	// scopes orders:read and orders:write, cnf.jkt when the token request
	// carried a DPoP proof). A token request without a resource still gets
	// an opaque token; none by default.
	Resources []string
}

// Provider is a running interop provider.
type Provider struct {
	issuer string
	opts   Options
	client *http.Client
}

// Stats are the provider's counters since it started, from GET /test/stats.
type Stats struct {
	// Grants counts successful token endpoint requests by grant_type.
	Grants map[string]int `json:"grants"`
	// GrantErrors counts failed token endpoint requests by grant_type.
	GrantErrors map[string]int `json:"grantErrors"`
	// Refreshes counts successful refresh_token grants.
	Refreshes int `json:"refreshes"`
	// RefreshErrors counts failed refresh_token grants.
	RefreshErrors int `json:"refreshErrors"`
	// Revocations counts successful requests to the revocation endpoint.
	Revocations int `json:"revocations"`
	// RevokedGrants counts whole grants revoked, by the provider route that
	// revoked them ("revocation", "token" for refresh token replay,
	// "end_session_confirm" for RP-Initiated Logout).
	RevokedGrants map[string]int `json:"revokedGrants"`
	// Backchannel counts back-channel logout deliveries.
	Backchannel BackchannelStats `json:"backchannel"`
	// EndSessions counts completed RP-Initiated Logouts.
	EndSessions int `json:"endSessions"`
}

// BackchannelStats count back-channel logout deliveries to the client.
type BackchannelStats struct {
	// Success counts deliveries answered 200 or 204.
	Success int `json:"success"`
	// Error counts failed deliveries.
	Error int `json:"error"`
	// Errors holds the failure messages.
	Errors []string `json:"errors"`
}

// Start installs and starts the interop provider and stops it when the test
// ends. It skips t when Node.js or npm is missing or npm ci fails, unless the
// environment has CI=true, in which case it fails t.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	ci := os.Getenv("CI") == "true"

	dir, err := interopDir()
	if err != nil {
		t.Fatalf("interoptest: %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, ci, "node not found in PATH: %v", err)
		return nil
	}
	if err := installOnce(dir); err != nil {
		unavailable(t, ci, "%v", err)
		return nil
	}

	opts, err = withDefaults(opts)
	if err != nil {
		t.Fatalf("interoptest: %v", err)
	}

	stderr := &tailBuffer{max: 64 << 10}
	ready := &readyWriter{found: make(chan string, 1)}
	cmd := exec.Command(node, filepath.Join(dir, "provider.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), opts.env()...)
	cmd.Stdout = ready
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("interoptest: start provider: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	t.Cleanup(func() {
		stop(cmd, exited)
		if t.Failed() {
			t.Logf("interoptest: provider stderr:\n%s", stderr.String())
		}
	})

	var issuer string
	select {
	case issuer = <-ready.found:
	case err := <-exited:
		exited <- err
		t.Fatalf("interoptest: provider exited before READY: %v\n%s", err, stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("interoptest: provider not READY after %s\n%s", startTimeout, stderr.String())
	}
	return &Provider{issuer: issuer, opts: opts, client: &http.Client{Timeout: 30 * time.Second}}
}

// Issuer returns the provider's issuer URL, e.g. http://127.0.0.1:41234.
func (p *Provider) Issuer() string { return p.issuer }

// Options returns the options in force, with defaults filled in.
func (p *Provider) Options() Options { return p.opts }

// Stats returns the provider's counters.
func (p *Provider) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := p.call(ctx, http.MethodGet, "/test/stats", &s)
	return s, err
}

// TriggerBackchannelLogout ends every provider session of sub as the
// provider's logout confirmation does: it sends a back-channel logout token
// to the client (when Options.BackchannelLogoutURI is set) and revokes the
// sessions' grants. It fails when sub has no provider session or a delivery
// failed.
func (p *Provider) TriggerBackchannelLogout(ctx context.Context, sub string) error {
	var res struct {
		Sessions int `json:"sessions"`
		Notified int `json:"notified"`
		Failed   int `json:"failed"`
	}
	if err := p.call(ctx, http.MethodPost, "/test/logout?sub="+url.QueryEscape(sub), &res); err != nil {
		return err
	}
	if res.Sessions == 0 {
		return fmt.Errorf("interoptest: no provider session for subject %q", sub)
	}
	if res.Failed > 0 {
		return fmt.Errorf("interoptest: %d of %d back-channel logout deliveries failed", res.Failed, res.Failed+res.Notified)
	}
	return nil
}

func (p *Provider) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, p.issuer+path, nil)
	if err != nil {
		return fmt.Errorf("interoptest: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("interoptest: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("interoptest: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("interoptest: %s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("interoptest: %s %s: %w", method, path, err)
	}
	return nil
}

func withDefaults(o Options) (Options, error) {
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		b := make([]byte, 32)
		rand.Read(b)
		o.ClientSecret = hex.EncodeToString(b)
	}
	if o.RedirectURI == "" {
		o.RedirectURI = DefaultRedirectURI
	}
	if o.AccessTokenTTL < 0 {
		return o, fmt.Errorf("access token ttl %s is negative", o.AccessTokenTTL)
	}
	return o, nil
}

// env renders o as the provider's environment. Every setting is given, so
// values inherited from the caller's environment cannot leak in.
func (o Options) env() []string {
	ttl := ""
	if o.AccessTokenTTL > 0 {
		ttl = strconv.FormatInt(int64(math.Ceil(o.AccessTokenTTL.Seconds())), 10)
	}
	refresh := "always"
	if o.RefreshTokensOnlyWithOfflineAccess {
		refresh = "offline_access"
	}
	return []string{
		"ISSUER=",
		"PORT=0",
		"CLIENT_ID=" + o.ClientID,
		"CLIENT_SECRET=" + o.ClientSecret,
		"REDIRECT_URI=" + o.RedirectURI,
		"POST_LOGOUT_REDIRECT_URI=" + o.PostLogoutRedirectURI,
		"BACKCHANNEL_LOGOUT_URI=" + o.BackchannelLogoutURI,
		"AUTO_LOGIN_SUB=" + o.AutoLoginSub,
		"ACCESS_TOKEN_TTL=" + ttl,
		"REFRESH_TOKENS=" + refresh,
		"RESOURCES=" + strings.Join(o.Resources, ","),
	}
}

// unavailable reports a missing prerequisite: a skip on a developer machine,
// a failure on CI.
func unavailable(t testing.TB, ci bool, format string, args ...any) {
	t.Helper()
	msg := "interoptest: interop provider unavailable: " + fmt.Sprintf(format, args...)
	if ci {
		t.Fatalf("%s (CI=true: Node.js and npm are required)", msg)
		return
	}
	t.Skipf("!!! SKIPPING INTEROP TEST !!! %s; install Node.js >= 20.19 with npm to run it", msg)
}

// stop ends the provider: SIGTERM, then a kill if it has not exited soon.
func stop(cmd *exec.Cmd, exited chan error) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err == nil {
		select {
		case <-exited:
			return
		case <-time.After(10 * time.Second):
		}
	}
	cmd.Process.Kill()
	<-exited
}

// interopDir finds the repository's interop directory: the first ancestor of
// the working directory (a test runs in its package directory) that holds
// go.mod, else the one above this source file.
func interopDir() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				interop := filepath.Join(dir, "interop")
				if _, err := os.Stat(filepath.Join(interop, "provider.mjs")); err == nil {
					return interop, nil
				}
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("cannot find interop/provider.mjs next to the module's go.mod")
}

// install state is per test binary: npm ci runs at most once per process.
var (
	install    sync.Once
	installErr error
)

func installOnce(dir string) error {
	install.Do(func() { installErr = ensureInstalled(dir) })
	return installErr
}

// InstallPackages runs npm ci in dir, a directory holding a package.json
// and its package-lock.json, unless dir/node_modules was already installed
// from that lock file. It is the installer Start uses for interop/, shared
// with the tests of the repository's other npm packages (clients/react).
// Concurrent test binaries installing into one dir take turns.
func InstallPackages(dir string) error {
	return ensureInstalled(dir)
}

// stampName records, inside node_modules, the hash of the package-lock.json
// it was installed from.
const stampName = ".gatehouse-lock.sha256"

// ensureInstalled runs npm ci unless node_modules matches package-lock.json.
// A file lock serialises test binaries that install concurrently.
func ensureInstalled(dir string) error {
	lockFile, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("read package-lock.json: %w", err)
	}
	sum := sha256.Sum256(lockFile)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", stampName)
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return nil
	}

	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("npm not found in PATH: %w", err)
	}
	dirSum := sha256.Sum256([]byte(dir))
	unlock, err := lockPath(filepath.Join(os.TempDir(), "gatehouse-interop-"+hex.EncodeToString(dirSum[:8])+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in %s failed: %w\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		return fmt.Errorf("write install stamp: %w", err)
	}
	return nil
}

// readyWriter receives the provider's stdout and reports the issuer from its
// first "READY <issuer>" line.
type readyWriter struct {
	mu    sync.Mutex
	line  []byte
	done  bool
	found chan string
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.line[:i]))
		w.line = w.line[i+1:]
		if issuer, ok := strings.CutPrefix(line, "READY "); ok {
			w.done = true
			w.line = nil
			w.found <- issuer
			break
		}
	}
	if len(w.line) > 4096 {
		w.line = w.line[len(w.line)-4096:]
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = b.buf[len(b.buf)-b.max:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
