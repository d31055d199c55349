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

// TestMillionSmoke runs every phase of the program with a thousand
// sessions on the embedded store (the one with the most phases), so the
// program cannot rot. It checks that each phase reported, never a figure.
func TestMillionSmoke(t *testing.T) {
	var out strings.Builder
	o := options{store: "bolt", n: 1000, expired: 100, conns: 4, sample: 100, loginsFor: time.Second, loginConns: 2, sweepWindow: 2 * time.Second, sweepMargin: time.Second, sweepEvery: 500 * time.Millisecond}
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"session creates/s", "sealed record:", "bytes per session", "used again at once", "the store sweeps by itself every 500ms", "bolt restart:", "full logins/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
