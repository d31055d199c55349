package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/benchkit"
)

func TestMain(m *testing.M) {
	benchkit.RunChildIfAsked()
	os.Exit(m.Run())
}

// TestSoakSmoke runs a few seconds of mixed traffic: logins, calls,
// refreshes (access tokens live just past the refresh lead), logouts.
// Any failed request fails the run; figures are not checked.
func TestSoakSmoke(t *testing.T) {
	var out strings.Builder
	o := options{d: 3 * time.Second, every: time.Second, warm: time.Second, browsers: 4, think: 5 * time.Millisecond,
		store: "memory", idle: time.Minute, accessTTL: 61 * time.Second, life: time.Second}
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"rss MiB", "totals:", "after the 1s warm-up"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), " 0 logouts") {
		t.Errorf("no browser logged out:\n%s", out.String())
	}
}
