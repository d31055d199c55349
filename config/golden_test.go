package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestNormalisedConfigGolden pins the documented defaults: a minimal file,
// once parsed, must normalise to exactly testdata/minimal.golden.yaml. A
// changed default shows up here as a reviewed diff.
func TestNormalisedConfigGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(in, env(map[string]string{"CLIENT_SECRET": "s3cret", "GATEHOUSE_KEY": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "minimal.golden.yaml")
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("normalised configuration differs from %s (run go test ./config -update and review):\n%s", golden, got)
	}
}
