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
	for _, want := range []string{"session creates/s", "sealed record:", "bytes per session", "used again at once", "until its LastSeen write is in the store", "the store sweeps by itself every 500ms", "bolt restart:", "full logins/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestMillionSmokePostgres runs the fill, lookups and sweep on the
// PostgreSQL store, whose space is measured in its own way.
func TestMillionSmokePostgres(t *testing.T) {
	pg, err := benchkit.StoreByName("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Check(benchkit.StoreEnv{}); err != nil {
		t.Skip(err)
	}
	var out strings.Builder
	o := options{store: "postgres", n: 500, expired: 50, conns: 4, sample: 50, sweepWindow: 2 * time.Second, sweepMargin: time.Second, sweepEvery: 500 * time.Millisecond}
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"bytes per session", "pg_total_relation_size", "until its LastSeen write is in the store", "worst one-second p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
