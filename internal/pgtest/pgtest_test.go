package pgtest

import (
	"strings"
	"testing"
)

func TestWithSearchPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/test?search_path=s1&sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db?search_path=s1"},
		{"host=127.0.0.1 dbname=test ", "host=127.0.0.1 dbname=test search_path=s1"},
	} {
		if got := WithSearchPath(tc.in, "s1"); got != tc.want {
			t.Errorf("WithSearchPath(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactedHidesPassword(t *testing.T) {
	for _, dsn := range []string{"postgres://u:hunter2@h/db", "host=h password=hunter2"} {
		if got := redacted(dsn); strings.Contains(got, "hunter2") {
			t.Errorf("redacted(%q) = %q", dsn, got)
		}
	}
}
