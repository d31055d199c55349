package doctor_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/doctor"
	"github.com/gatehouse-bff/gatehouse/internal/hostileop"
	"github.com/gatehouse-bff/gatehouse/internal/pgtest"
	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
)

const publicURL = "https://app.example.test"

// setup is a deployment under test: a provider and the YAML lines that
// make up Gatehouse's configuration, which cases change.
type setup struct {
	op    *hostileop.Provider
	lines map[string]string // section → flow mapping body
	extra string
}

func newSetup(t *testing.T, opts ...hostileop.Option) *setup {
	t.Helper()
	opts = append([]hostileop.Option{hostileop.WithClient("spa", "a-client-secret-of-at-least-32-bytes!", publicURL+"/bff/callback")}, opts...)
	op := hostileop.New(t, opts...)
	key, err := seal.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	return &setup{op: op, lines: map[string]string{
		"server":  "public_url: " + publicURL,
		"oidc":    "issuer: " + op.URL + ", client_id: spa, client_secret: a-client-secret-of-at-least-32-bytes!",
		"session": fmt.Sprintf("store: bolt, bolt_path: %q, keys: [%q]", filepath.Join(t.TempDir(), "gatehouse.db"), key),
	}}
}

func (s *setup) yaml() string {
	var b strings.Builder
	for _, sec := range []string{"server", "oidc", "session", "admin"} {
		if v, ok := s.lines[sec]; ok {
			fmt.Fprintf(&b, "%s: { %s }\n", sec, v)
		}
	}
	b.WriteString(s.extra)
	return b.String()
}

func (s *setup) config(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(s.yaml()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, s.yaml())
	}
	return cfg
}

// rewriter edits the provider's discovery document or key set in flight,
// for provider behaviours the hostile provider has no switch for.
type rewriter struct {
	discovery func(doc map[string]any)
	jwks      func(set map[string]any)
}

func (rw rewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	edit := rw.discovery
	if strings.HasSuffix(r.URL.Path, "/jwks") {
		edit = rw.jwks
	} else if !strings.HasSuffix(r.URL.Path, "/openid-configuration") {
		edit = nil
	}
	if edit == nil {
		return resp, nil
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, err
	}
	edit(doc)
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

func TestGoodSetupPasses(t *testing.T) {
	s := newSetup(t)
	r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
	if r.ExitCode() != 0 {
		t.Fatalf("exit code %d for a good setup:\n%s", r.ExitCode(), dump(r))
	}
	for _, id := range []string{"config", "discovery", "clock", "pkce", "prompt", "iss_parameter", "backchannel_logout", "frontchannel_logout", "revocation",
		"end_session", "refresh_tokens", "auth_method", "signing_algs", "jwks", "cookie", "tls", "keys", "admin", "store"} {
		if c, ok := r.Find(id); !ok || c.Status != doctor.Pass {
			t.Errorf("check %s = %+v, want PASS", id, c)
		}
	}
	if c, _ := r.Find("frontchannel_logout"); !strings.Contains(c.Message, publicURL+"/bff/frontchannel") || !strings.Contains(c.Message, "frontchannel_logout_session_required") {
		t.Errorf("frontchannel_logout = %+v, want the URI to register with frontchannel_logout_session_required", c)
	}
	c, _ := r.Find("redirect_uri")
	if c.Status != doctor.Info || !strings.Contains(c.Message, publicURL+"/bff/callback") {
		t.Errorf("redirect_uri = %+v, want INFO naming the callback URL", c)
	}
	c, _ = r.Find("post_logout_redirect_uri")
	if c.Status != doctor.Info || !strings.Contains(c.Message, publicURL+"/") {
		t.Errorf("post_logout_redirect_uri = %+v", c)
	}
	if s := r.Summary; s.Warn != 0 || s.Fail != 0 || s.Pass+s.Info != len(r.Checks) {
		t.Errorf("summary %+v does not count %d checks", s, len(r.Checks))
	}
}

func TestFindings(t *testing.T) {
	tests := []struct {
		name   string
		op     []hostileop.Option
		change func(s *setup)
		rw     rewriter
		id     string
		want   doctor.Status
		says   string
	}{
		{name: "no pkce advertised", change: func(s *setup) { s.op.SetCodeChallengeMethods(nil) },
			id: "pkce", want: doctor.Warn, says: "cannot tell"},
		{name: "pkce plain only", change: func(s *setup) { s.op.SetCodeChallengeMethods([]string{"plain"}) },
			id: "pkce", want: doctor.Fail, says: "not S256"},
		{name: "no prompt values", change: func(s *setup) { s.op.SetPromptValues(nil) },
			id: "prompt", want: doctor.Pass, says: "none, login, consent and select_account (silent login with prompt=none included)"},
		{name: "extra prompt value", change: func(s *setup) { s.op.SetPromptValues([]string{"none", "login", "create"}) },
			id: "prompt", want: doctor.Pass, says: "and create as the provider lists"},
		{name: "no iss parameter", change: func(s *setup) { s.op.SetIssParam(hostileop.IssParamUnsupported) },
			id: "iss_parameter", want: doctor.Warn, says: "RFC 9207"},
		{name: "no revocation", change: func(s *setup) { s.op.SetRevocation(false) },
			id: "revocation", want: doctor.Warn, says: "revoke_on_logout"},
		{name: "no revocation, revoke_on_logout off", change: func(s *setup) {
			s.op.SetRevocation(false)
			s.lines["oidc"] += ", revoke_on_logout: false"
		}, id: "revocation", want: doctor.Pass},
		{name: "no end session", change: func(s *setup) { s.op.SetEndSession(false) },
			id: "end_session", want: doctor.Warn, says: "end_session_endpoint"},
		{name: "no dpop", id: "dpop", want: doctor.Info, says: "bearer tokens"},
		{name: "dpop offered", change: func(s *setup) { s.op.SetDPoP(true) }, id: "dpop", want: doctor.Pass, says: "per-session key"},
		{name: "dpop offered but off", change: func(s *setup) {
			s.op.SetDPoP(true)
			s.lines["oidc"] += ", dpop: \"off\""
		}, id: "dpop", want: doctor.Warn, says: "oidc.dpop is off"},
		{name: "discovery for another issuer", change: func(s *setup) { s.op.SetDiscoveryIssuer("https://evil.example.test") },
			id: "discovery", want: doctor.Fail, says: "https://evil.example.test"},
		{name: "back-channel logout without sid", op: []hostileop.Option{hostileop.WithSID(false)},
			id: "backchannel_logout", want: doctor.Warn, says: "no sid"},
		{name: "no back-channel logout", rw: rewriter{discovery: func(d map[string]any) { d["backchannel_logout_supported"] = false }},
			id: "backchannel_logout", want: doctor.Warn, says: "backchannel_logout_supported"},
		{name: "front-channel logout without sid", op: []hostileop.Option{hostileop.WithSID(false)},
			id: "frontchannel_logout", want: doctor.Warn, says: "frontchannel_logout_session_supported"},
		{name: "no front-channel logout", rw: rewriter{discovery: func(d map[string]any) { d["frontchannel_logout_supported"] = false }},
			id: "frontchannel_logout", want: doctor.Info, says: "frontchannel_logout_supported"},
		{name: "offline_access not requested", change: func(s *setup) { s.lines["oidc"] += ", scopes: [openid, profile]" },
			id: "refresh_tokens", want: doctor.Warn, says: "lacks offline_access"},
		{name: "offline_access not supported", rw: rewriter{discovery: func(d map[string]any) { d["scopes_supported"] = []string{"openid", "profile"} }},
			id: "refresh_tokens", want: doctor.Warn, says: "scopes_supported"},
		{name: "no refresh_token grant", rw: rewriter{discovery: func(d map[string]any) { d["grant_types_supported"] = []string{"authorization_code"} }},
			id: "refresh_tokens", want: doctor.Warn, says: "grant_types_supported"},
		{name: "auth method not offered", rw: rewriter{discovery: func(d map[string]any) { d["token_endpoint_auth_methods_supported"] = []string{"client_secret_post"} }},
			id: "auth_method", want: doctor.Fail, says: "client_secret_basic"},
		{name: "no common signing alg", change: func(s *setup) { s.lines["oidc"] += ", signing_algs: [ES256]" },
			id: "signing_algs", want: doctor.Fail, says: "RS256"},
		{name: "provider signs with HMAC", rw: rewriter{discovery: func(d map[string]any) { d["id_token_signing_alg_values_supported"] = []string{"HS256", "none"} }},
			id: "signing_algs", want: doctor.Fail, says: "HS256"},
		{name: "empty key set", rw: rewriter{jwks: func(set map[string]any) { set["keys"] = []any{} }},
			id: "jwks", want: doctor.Fail, says: "none a public signing key"},
		{name: "plain http loopback", change: func(s *setup) { s.lines["server"] = "public_url: http://localhost:8080" },
			id: "tls", want: doctor.Warn, says: "development only"},
		{name: "strict cookie, cross-site provider", change: func(s *setup) { s.lines["session"] += ", same_site: strict" },
			id: "cookie", want: doctor.Warn, says: "SameSite=Strict"},
		{name: "admin off", change: func(s *setup) { s.lines["admin"] = "listen: \"off\"" },
			id: "admin", want: doctor.Pass},
		{name: "admin on the network", change: func(s *setup) { s.lines["admin"] = "listen: \"0.0.0.0:9090\", token: an-admin-token" },
			id: "admin", want: doctor.Warn, says: "reachable from the network"},
		{name: "diagnostics on", change: func(s *setup) { s.extra += "bff: { diagnostics: true }\n" },
			id: "diagnostics", want: doctor.Warn, says: "development only"},
		{name: "memory store", change: func(s *setup) { s.lines["session"] = "store: memory" },
			id: "store", want: doctor.Warn, says: "development only"},
		{name: "bolt directory missing", change: func(s *setup) {
			s.lines["session"] = strings.Replace(s.lines["session"], "gatehouse.db", "missing/gatehouse.db", 1)
		}, id: "store", want: doctor.Fail, says: "not usable"},
		{name: "two keys", change: func(s *setup) {
			k2, _ := seal.GenerateKey("k2")
			s.lines["session"] = strings.Replace(s.lines["session"], "keys: [", fmt.Sprintf("keys: [%q, ", k2), 1)
		}, id: "keys", want: doctor.Pass, says: "sealed with k2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, tt.op...)
			if tt.change != nil {
				tt.change(s)
			}
			opts := doctor.Options{}
			if tt.rw.discovery != nil || tt.rw.jwks != nil {
				opts.HTTPClient = &http.Client{Transport: tt.rw, Timeout: 5 * time.Second}
			}
			r := doctor.Run(context.Background(), s.config(t), opts)
			c, ok := r.Find(tt.id)
			if !ok || c.Status != tt.want || !strings.Contains(c.Message, tt.says) {
				t.Fatalf("check %s = %+v, want %s saying %q\n%s", tt.id, c, tt.want, tt.says, dump(r))
			}
			if tt.want != doctor.Pass && c.Fix == "" {
				t.Errorf("check %s has no fix", tt.id)
			}
			wantCode := map[doctor.Status]int{doctor.Pass: 0, doctor.Info: 0, doctor.Warn: 1, doctor.Fail: 2}[tt.want]
			if tt.want == doctor.Pass || tt.want == doctor.Info {
				wantCode = r.ExitCode() // other checks decide
			}
			if r.ExitCode() != wantCode {
				t.Errorf("exit code %d, want %d\n%s", r.ExitCode(), wantCode, dump(r))
			}
		})
	}
}

func TestClockSkew(t *testing.T) {
	tests := []struct {
		offset time.Duration
		want   doctor.Status
		says   string
	}{
		{0, doctor.Pass, "within"},
		{2 * time.Minute, doctor.Warn, "ahead of"},
		{-2 * time.Minute, doctor.Warn, "behind"},
		{10 * time.Minute, doctor.Fail, "ahead of"},
		{-time.Hour, doctor.Fail, "behind"},
	}
	s := newSetup(t)
	cfg := s.config(t)
	for _, tt := range tests {
		t.Run(tt.offset.String(), func(t *testing.T) {
			r := doctor.Run(context.Background(), cfg, doctor.Options{Now: func() time.Time { return time.Now().Add(tt.offset) }})
			c, _ := r.Find("clock")
			if c.Status != tt.want || !strings.Contains(c.Message, tt.says) {
				t.Fatalf("clock check with offset %s = %+v, want %s saying %q", tt.offset, c, tt.want, tt.says)
			}
		})
	}
}

func TestUnreachableProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := newSetup(t)
	s.lines["oidc"] = "issuer: http://" + addr + ", client_id: spa, client_secret: x"
	r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
	c, _ := r.Find("discovery")
	if c.Status != doctor.Fail || r.ExitCode() != 2 {
		t.Fatalf("discovery = %+v, exit %d; want FAIL, 2", c, r.ExitCode())
	}
	for _, id := range []string{"pkce", "jwks", "signing_algs"} {
		if _, ok := r.Find(id); ok {
			t.Errorf("check %s ran without a discovery document", id)
		}
	}
	if _, ok := r.Find("redirect_uri"); !ok {
		t.Error("local checks did not run after discovery failed")
	}
}

func TestInvalidConfigurationIsOneFailure(t *testing.T) {
	s := newSetup(t)
	s.lines["session"] = "store: redis, cookie_name: sid"
	r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
	if len(r.Checks) != 1 || r.Checks[0].ID != "config" || r.Checks[0].Status != doctor.Fail || r.ExitCode() != 2 {
		t.Fatalf("report for an invalid configuration:\n%s", dump(r))
	}
	for _, want := range []string{"redis_url", "session.keys", "__Host-"} {
		if !strings.Contains(r.Checks[0].Message, want) {
			t.Errorf("config failure lacks %q: %s", want, r.Checks[0].Message)
		}
	}
	if st := s.op.Stats(); st.Discovery != 0 {
		t.Errorf("the provider was contacted %d times for an invalid configuration", st.Discovery)
	}
}

func TestRedisStore(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s := newSetup(t)
		s.lines["session"] = strings.Replace(s.lines["session"], "store: bolt", "store: redis, redis_url: \"redis://:hunter2-password@"+addr+"/0\"", 1)
		r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
		c, _ := r.Find("store")
		if c.Status != doctor.Fail || r.ExitCode() != 2 {
			t.Fatalf("store = %+v, want FAIL", c)
		}
		if strings.Contains(dump(r), "hunter2") {
			t.Error("the report shows the Redis password")
		}
	})
	t.Run("injected pinger", func(t *testing.T) {
		s := newSetup(t)
		s.lines["session"] = strings.Replace(s.lines["session"], "store: bolt", "store: redis, redis_url: \"redis://127.0.0.1:1/0\"", 1)
		down := pingFunc(func(context.Context) error { return errors.New("connection refused") })
		r := doctor.Run(context.Background(), s.config(t), doctor.Options{Store: down})
		if c, _ := r.Find("store"); c.Status != doctor.Fail || !strings.Contains(c.Message, "connection refused") {
			t.Fatalf("store = %+v", c)
		}
		up := pingFunc(func(context.Context) error { return nil })
		r = doctor.Run(context.Background(), s.config(t), doctor.Options{Store: up})
		if c, _ := r.Find("store"); c.Status != doctor.Pass {
			t.Fatalf("store = %+v", c)
		}
	})
	t.Run("running", func(t *testing.T) {
		srv := redistest.Start(t)
		s := newSetup(t)
		s.lines["session"] = strings.Replace(s.lines["session"], "store: bolt", "store: redis, redis_url: \""+srv.URL()+"\"", 1)
		r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
		if c, _ := r.Find("store"); c.Status != doctor.Pass {
			t.Fatalf("store = %+v", c)
		}
	})
}

func TestPostgresStore(t *testing.T) {
	withDSN := func(s *setup, dsn string) {
		s.lines["session"] = strings.Replace(s.lines["session"], "store: bolt", "store: postgres", 1)
		s.extra = fmt.Sprintf("postgres: { dsn: %q }\n", dsn)
	}
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s := newSetup(t)
		withDSN(s, "postgres://gatehouse:hunter2-password@"+addr+"/gatehouse?sslmode=disable")
		r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
		c, _ := r.Find("store")
		if c.Status != doctor.Fail || r.ExitCode() != 2 {
			t.Fatalf("store = %+v, want FAIL", c)
		}
		if strings.Contains(dump(r), "hunter2") {
			t.Error("the report shows the PostgreSQL password")
		}
	})
	t.Run("unparsable", func(t *testing.T) {
		s := newSetup(t)
		withDSN(s, "postgres://gatehouse:hunter2-password@127.0.0.1:5432/gatehouse?sslmode=bogus")
		r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
		if c, _ := r.Find("store"); c.Status != doctor.Fail {
			t.Fatalf("store = %+v, want FAIL", c)
		}
		if strings.Contains(dump(r), "hunter2") {
			t.Error("the report shows the PostgreSQL password")
		}
	})
	t.Run("running", func(t *testing.T) {
		s := newSetup(t)
		withDSN(s, pgtest.DSN(t))
		r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
		if c, _ := r.Find("store"); c.Status != doctor.Pass {
			t.Fatalf("store = %+v", c)
		}
	})
}

type pingFunc func(context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

func TestTLSCertificate(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name     string
		host     string
		notAfter time.Time
		want     doctor.Status
		says     string
	}{
		{"valid", "app.example.test", now.Add(90 * 24 * time.Hour), doctor.Pass, "valid until"},
		{"expiring", "app.example.test", now.Add(3 * 24 * time.Hour), doctor.Warn, "expires on"},
		{"expired", "app.example.test", now.Add(-time.Hour), doctor.Fail, "expired on"},
		{"other host", "other.example.test", now.Add(90 * 24 * time.Hour), doctor.Warn, "does not name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, key := writeCert(t, tt.host, tt.notAfter)
			s := newSetup(t)
			s.lines["server"] += fmt.Sprintf(", tls_cert: %q, tls_key: %q", cert, key)
			r := doctor.Run(context.Background(), s.config(t), doctor.Options{Now: func() time.Time { return now }})
			if c, _ := r.Find("tls_listener"); c.Status != tt.want || !strings.Contains(c.Message, tt.says) {
				t.Fatalf("tls_listener = %+v, want %s saying %q", c, tt.want, tt.says)
			}
		})
	}
}

func writeCert(t *testing.T, host string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    notAfter.Add(-365 * 24 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		statuses []doctor.Status
		want     int
	}{
		{nil, 0},
		{[]doctor.Status{doctor.Pass, doctor.Info}, 0},
		{[]doctor.Status{doctor.Pass, doctor.Warn, doctor.Info}, 1},
		{[]doctor.Status{doctor.Warn, doctor.Fail, doctor.Pass}, 2},
	}
	for _, tt := range tests {
		var checks []doctor.Check
		for i, st := range tt.statuses {
			checks = append(checks, doctor.Check{ID: fmt.Sprint(i), Status: st})
		}
		if got := doctor.NewReport(checks...).ExitCode(); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.statuses, got, tt.want)
		}
	}
}

func dump(r doctor.Report) string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%s %s: %s [fix: %s]\n", c.Status, c.ID, c.Message, c.Fix)
	}
	return b.String()
}

// Every app gets its own URIs to register, its own provider checks when
// it names another issuer or client, and warnings for what apps share.
func TestApps(t *testing.T) {
	const secret = "a-client-secret-of-at-least-32-bytes!"
	other := hostileop.New(t, hostileop.WithClient("admin", secret, publicURL+"/admin/bff/callback"))
	type want struct {
		app, id string
		status  doctor.Status
		says    string
	}
	tests := []struct {
		name string
		apps string
		top  bool // the top level serves an app too
		want []want
		// absent lists app/id pairs that must not appear.
		absent []want
		// discovery counts the fetches of the main provider's document.
		discovery int
		code      int
	}{
		{name: "host-based app with its own client",
			apps: "  - { name: shop, public_url: https://shop.example.test, oidc: { client_id: shop } }\n",
			want: []want{
				{"shop", "redirect_uri", doctor.Info, "app shop: Gatehouse's redirect URI is https://shop.example.test/bff/callback"},
				{"shop", "post_logout_redirect_uri", doctor.Info, "https://shop.example.test/"},
				{"shop", "backchannel_logout_uri", doctor.Info, "https://shop.example.test/bff/backchannel"},
				{"shop", "discovery", doctor.Pass, "app shop: discovery at"},
				{"shop", "backchannel_logout", doctor.Pass, "https://shop.example.test/bff/backchannel"},
				{"shop", "cookie", doctor.Pass, "__Host-gatehouse-shop"},
			},
			absent:    []want{{app: "", id: "redirect_uri"}, {app: "shop", id: "path_based_app"}},
			discovery: 1, code: 0},
		{name: "top-level app and a host-based app on the same client",
			top:  true,
			apps: "  - { name: shop, public_url: https://shop.example.test }\n",
			want: []want{
				{"", "redirect_uri", doctor.Info, publicURL + "/bff/callback"},
				{"", "discovery", doctor.Pass, "discovery at"},
				{"shop", "redirect_uri", doctor.Info, "https://shop.example.test/bff/callback"},
			},
			absent:    []want{{app: "shop", id: "discovery"}},
			discovery: 1, code: 0},
		{name: "path-based app at another provider",
			top:  true,
			apps: "  - { name: admin, path: /admin, oidc: { issuer: " + other.URL + ", client_id: admin } }\n",
			want: []want{
				{"admin", "redirect_uri", doctor.Info, publicURL + "/admin/bff/callback"},
				{"admin", "post_logout_redirect_uri", doctor.Info, publicURL + "/admin/"},
				{"admin", "backchannel_logout_uri", doctor.Info, publicURL + "/admin/bff/backchannel"},
				{"admin", "discovery", doctor.Pass, other.URL},
				{"admin", "path_based_app", doctor.Warn, "shares one browser origin"},
				{"admin", "path_based_app", doctor.Warn, "pass the CSRF checks"},
				{"", "discovery", doctor.Pass, "discovery at"},
			},
			discovery: 1, code: 1},
		{name: "two path-based apps",
			apps: "  - { name: shop, path: /shop, oidc: { client_id: shop } }\n" +
				"  - { name: admin, path: /admin, oidc: { client_id: admin } }\n",
			want: []want{
				{"shop", "path_based_app", doctor.Warn, "app shop is path-based (/shop under " + publicURL + ")"},
				{"admin", "path_based_app", doctor.Warn, "app admin is path-based (/admin under " + publicURL + ")"},
				{"shop", "discovery", doctor.Pass, ""},
				{"admin", "discovery", doctor.Pass, ""},
			},
			absent:    []want{{app: "admin", id: "cookie_shared"}},
			discovery: 2, code: 1},
		{name: "two apps on one host with one cookie",
			apps: "  - { name: shop, path: /shop, oidc: { client_id: shop }, session: { cookie_name: __Host-shared } }\n" +
				"  - { name: admin, path: /admin, oidc: { client_id: admin }, session: { cookie_name: __Host-shared } }\n",
			want: []want{
				{"admin", "cookie_shared", doctor.Warn, "app shop and app admin both use cookie __Host-shared on app.example.test"},
				{"admin", "cookie_shared", doctor.Warn, "sessions stay apart"},
			},
			discovery: 2, code: 1},
		{name: "top-level app and an app with its cookie",
			top: true,
			apps: "  - { name: shop, public_url: https://shop.example.test, session: { cookie_name: __Host-gatehouse } }\n" +
				"  - { name: admin, path: /admin, session: { cookie_name: __Host-gatehouse } }\n",
			want: []want{
				{"admin", "cookie_shared", doctor.Warn, "the top-level app and app admin both use cookie __Host-gatehouse"},
			},
			// Host-only cookies on two hosts do not meet.
			absent:    []want{{app: "shop", id: "cookie_shared"}},
			discovery: 1, code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, hostileop.WithClient("shop", secret), hostileop.WithClient("admin", secret))
			s.extra = "apps:\n" + tt.apps
			if tt.top {
				s.extra += "routes: [ { prefix: /api/, upstream: http://127.0.0.1:9001 } ]\n"
			}
			r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
			for _, w := range tt.want {
				c, ok := r.FindApp(w.app, w.id)
				if !ok || c.Status != w.status || !strings.Contains(c.Message, w.says) {
					t.Errorf("app %q check %s = %+v, want %s saying %q", w.app, w.id, c, w.status, w.says)
				}
				if w.id == "path_based_app" && !strings.Contains(c.Fix, "public_url") {
					t.Errorf("app %q: path_based_app does not recommend a host-based app: %q", w.app, c.Fix)
				}
				if w.status == doctor.Warn && c.Fix == "" {
					t.Errorf("app %q check %s has no fix", w.app, w.id)
				}
			}
			for _, w := range tt.absent {
				if c, ok := r.FindApp(w.app, w.id); ok {
					t.Errorf("app %q has check %s: %+v", w.app, w.id, c)
				}
			}
			if got := s.op.Stats().Discovery; got != tt.discovery {
				t.Errorf("the provider's discovery document was fetched %d times, want %d (once per client)", got, tt.discovery)
			}
			if r.ExitCode() != tt.code {
				t.Errorf("exit code %d, want %d", r.ExitCode(), tt.code)
			}
			if t.Failed() {
				t.Log(dump(r))
			}
		})
	}
}
