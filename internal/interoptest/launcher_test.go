package interoptest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Skipf and Fatalf instead of
// stopping the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skipf(f string, args ...any)  { r.skipped = fmt.Sprintf(f, args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func TestStartWithoutNode(t *testing.T) {
	tests := []struct {
		name     string
		ci       string
		wantSkip bool
	}{
		{name: "developer machine skips", ci: "", wantSkip: true},
		{name: "CI fails", ci: "true", wantSkip: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv("CI", tt.ci)
			rec := &recorder{TB: t}
			if p := Start(rec, Options{}); p != nil {
				t.Fatal("Start returned a provider without node")
			}
			if tt.wantSkip {
				if rec.failed != "" || !strings.Contains(rec.skipped, "SKIPPING") || !strings.Contains(rec.skipped, "node not found") {
					t.Errorf("skipped=%q failed=%q, want a loud skip", rec.skipped, rec.failed)
				}
				return
			}
			if rec.skipped != "" || !strings.Contains(rec.failed, "CI=true") {
				t.Errorf("skipped=%q failed=%q, want a failure", rec.skipped, rec.failed)
			}
		})
	}
}

func TestOptionsEnv(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{
			name: "defaults",
			opts: Options{ClientSecret: "s"},
			want: []string{"PORT=0", "CLIENT_ID=gatehouse", "CLIENT_SECRET=s", "REDIRECT_URI=" + DefaultRedirectURI, "ACCESS_TOKEN_TTL=", "REFRESH_TOKENS=always", "AUTO_LOGIN_SUB=", "BACKCHANNEL_LOGOUT_URI=", "RESOURCES="},
		},
		{
			name: "ttl rounds up to whole seconds",
			opts: Options{ClientSecret: "s", AccessTokenTTL: 1500 * time.Millisecond},
			want: []string{"ACCESS_TOKEN_TTL=2"},
		},
		{
			name: "all settings",
			opts: Options{
				ClientID: "spa", ClientSecret: "s", RedirectURI: "http://127.0.0.1:9/cb",
				PostLogoutRedirectURI: "http://127.0.0.1:9/out", BackchannelLogoutURI: "http://127.0.0.1:9/bc",
				AutoLoginSub: "alice", AccessTokenTTL: time.Minute, RefreshTokensOnlyWithOfflineAccess: true,
				Resources: []string{"https://orders.test", "https://admin.test"},
			},
			want: []string{
				"CLIENT_ID=spa", "REDIRECT_URI=http://127.0.0.1:9/cb", "POST_LOGOUT_REDIRECT_URI=http://127.0.0.1:9/out",
				"BACKCHANNEL_LOGOUT_URI=http://127.0.0.1:9/bc", "AUTO_LOGIN_SUB=alice", "ACCESS_TOKEN_TTL=60", "REFRESH_TOKENS=offline_access",
				"RESOURCES=https://orders.test,https://admin.test",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := withDefaults(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			env := o.env()
			for _, w := range tt.want {
				if !slices.Contains(env, w) {
					t.Errorf("env %q lacks %q", env, w)
				}
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	a, _ := withDefaults(Options{})
	b, _ := withDefaults(Options{})
	if len(a.ClientSecret) < 32 || a.ClientSecret == b.ClientSecret {
		t.Errorf("generated secrets %q and %q are short or equal", a.ClientSecret, b.ClientSecret)
	}
	if _, err := withDefaults(Options{AccessTokenTTL: -time.Second}); err == nil {
		t.Error("negative ttl accepted")
	}
}

func TestReadyWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "one write", writes: []string{"READY http://127.0.0.1:1\n"}, want: "http://127.0.0.1:1"},
		{name: "split line", writes: []string{"notice\nRE", "ADY http://127.0.0.1:2", "\nmore\n"}, want: "http://127.0.0.1:2"},
		{name: "first READY wins", writes: []string{"READY a\nREADY b\n"}, want: "a"},
		{name: "no newline yet", writes: []string{"READY http://127.0.0.1:3"}, want: ""},
		{name: "not at line start", writes: []string{"xREADY http://127.0.0.1:4\n"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &readyWriter{found: make(chan string, 1)}
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			var got string
			select {
			case got = <-w.found:
			default:
			}
			if got != tt.want {
				t.Errorf("issuer = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := &tailBuffer{max: 5}
	b.Write([]byte("abc"))
	b.Write([]byte("defg"))
	if got := b.String(); got != "cdefg" {
		t.Errorf("tail = %q", got)
	}
}
