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

// TestStormSmoke runs a small storm with one replica and, when Redis
// answers, with two. Exactly one refresh per session is the program's own
// pass condition (no timing is checked).
func TestStormSmoke(t *testing.T) {
	var out strings.Builder
	o := options{sessions: 30, calls: 3, conns: 30, loginC: 4, store: "memory", accessTTL: time.Hour}
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "OK: exactly one refresh per session") {
		t.Errorf("no storm passed:\n%s", out.String())
	}
	if strings.Contains(out.String(), "SKIPPING") {
		if os.Getenv("CI") == "true" {
			t.Errorf("Redis is required under CI:\n%s", out.String())
		}
		t.Logf("SKIPPED the two-replica storm: Redis does not answer\n%s", out.String())
	}
}
