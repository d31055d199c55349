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

// TestCompareSmoke runs the whole comparison for a second per target, so
// the program cannot rot. It checks the table, never the figures.
func TestCompareSmoke(t *testing.T) {
	var out strings.Builder
	o := options{rounds: 1, d: time.Second, conns: 4, threads: 1, driver: "inproc", stores: []string{"memory", "bolt"}}
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, row := range []string{"| bare ", "| gatehouse-memory ", "| gatehouse-bolt ", "sets Authorization"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("output lacks %q:\n%s", row, out.String())
		}
	}
}
