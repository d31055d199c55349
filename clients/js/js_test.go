package jsclient

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// suiteTimeout stops a suite that hangs (a test waiting for an event that
// never comes, or a leaked timer or channel keeping Node alive). It only
// turns a hang into a failure; the suite takes about a second.
const suiteTimeout = 3 * time.Minute

// TestJavaScriptSuite runs the helper's own tests with Node's built-in test
// runner, so that `go test ./...` covers them. Without Node it skips loudly,
// except under CI=true, where a missing Node is a failure.
func TestJavaScriptSuite(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed; CI must install it (apt-get install nodejs)")
		}
		t.Skip("SKIPPING the JavaScript helper tests: node is not installed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), suiteTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test")
	cmd.Dir = "."
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node --test failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"# fail 0", "# cancelled 0"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Fatalf("node --test reported failures or no summary (want %q):\n%s", want, out.String())
		}
	}
}

func TestEmbeddedModule(t *testing.T) {
	if !bytes.Contains(Module, []byte("export function createClient")) {
		t.Error("embedded gatehouse.js does not export createClient")
	}
}
