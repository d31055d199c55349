package redistest

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on the private server: %v", err)
	}
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Errorf("URL() = %q; want a loopback redis URL", s.URL())
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded after Stop")
	}
	s.Stop() // stopping twice is harmless
	s.Restart()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Error("the restarted server kept data; it must start empty")
	}
}

func TestPrefixAndKeys(t *testing.T) {
	c := Client(t)
	ctx := t.Context()
	var p1, p2 string
	t.Run("writer", func(t *testing.T) {
		p1, p2 = Prefix(t, c), Prefix(t, c)
		if p1 == p2 || !strings.HasPrefix(p1, "{") || !strings.HasSuffix(p1, "}:") {
			t.Fatalf("prefixes %q and %q must be distinct hash tags", p1, p2)
		}
		for _, k := range []string{p1 + "a", p1 + "b*?[x]", p2 + "a"} {
			if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := Keys(ctx, c, p1)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if want := []string{p1 + "a", p1 + "b*?[x]"}; !slices.Equal(got, want) {
			t.Fatalf("Keys(%q) = %q; want %q", p1, got, want)
		}
	})
	// The subtest's cleanup deleted its keys.
	for _, p := range []string{p1, p2} {
		if left, err := Keys(ctx, c, p); err != nil || len(left) != 0 {
			t.Errorf("keys under %q after cleanup: %q, %v", p, left, err)
		}
	}
	if got := globEscape(`a*b?c[d]e\`); got != `a\*b\?c\[d\]e\\` {
		t.Errorf("globEscape = %q", got)
	}
}

// TestMissingRedis runs TestHelperNeedsRedis in a child process whose PATH
// holds no redis-server: a skip normally, a failure under CI=true.
func TestMissingRedis(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		t.Skip("running as the child")
	}
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{
		{"", false},
		{"true", true},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNeedsRedis$", "-test.v")
		cmd.Env = append(os.Environ(), "REDISTEST_CHILD=1", "PATH="+t.TempDir(), EnvURL+"=", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail {
			t.Errorf("CI=%q: child failed = %v; want %v\n%s", tc.ci, failed, tc.wantFail, out)
		}
		if !strings.Contains(string(out), "REDIS TESTS NOT RUN") {
			t.Errorf("CI=%q: child output lacks the loud message:\n%s", tc.ci, out)
		}
		if !tc.wantFail && !strings.Contains(string(out), "--- SKIP") {
			t.Errorf("CI=%q: child did not skip:\n%s", tc.ci, out)
		}
	}
}

func TestHelperNeedsRedis(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") != "1" {
		t.Skip("helper for TestMissingRedis")
	}
	Client(t)
	t.Error("Client returned without a redis-server on PATH")
}
