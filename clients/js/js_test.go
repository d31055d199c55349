package jsclient

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

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
	cmd := exec.Command(node, "--test")
	cmd.Dir = "."
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node --test failed: %v\n%s", err, out.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("# fail 0")) {
		t.Fatalf("node --test reported failures or no summary:\n%s", out.String())
	}
}

func TestEmbeddedModule(t *testing.T) {
	if !bytes.Contains(Module, []byte("export function createClient")) {
		t.Error("embedded gatehouse.js does not export createClient")
	}
}
