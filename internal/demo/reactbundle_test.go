package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/interoptest"
)

// TestReactBundleUpToDate rebuilds the demo's React page with
// spa-react/build.sh (the esbuild, react and react-dom locked in
// clients/react) and fails when the committed spa/react.js differs, so the
// embedded bundle cannot drift from its source, the bindings or the lock
// file. Without node or npm it skips loudly, and fails under CI=true.
func TestReactBundleUpToDate(t *testing.T) {
	missing := func(format string, args ...any) {
		t.Helper()
		msg := "demo: " + fmt.Sprintf(format, args...) +
			"; THE REACT BUNDLE CHECK DID NOT RUN. Install Node.js and npm (apt-get install -y nodejs npm)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("\n\n*** " + msg + " ***\n")
	}
	for _, tool := range []string{"node", "npm", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing("%s not found: %v", tool, err)
		}
	}
	pkg, err := filepath.Abs(filepath.Join("..", "..", "clients", "react"))
	if err != nil {
		t.Fatal(err)
	}
	if err := interoptest.InstallPackages(pkg); err != nil {
		missing("%v", err)
	}

	out := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join("spa-react", "build.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spa-react/build.sh: %v\n%s", err, b)
	}
	built, err := os.ReadFile(filepath.Join(out, "react.js"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := spa.ReadFile("spa/react.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, committed) {
		t.Fatalf("internal/demo/spa/react.js (%d bytes) is not what spa-react/build.sh builds (%d bytes) from app.jsx, clients/react, clients/js and clients/react/package-lock.json: run internal/demo/spa-react/build.sh and commit spa/react.js",
			len(committed), len(built))
	}
	t.Logf("spa/react.js is up to date: %d bytes", len(built))
}

// TestReactPageIsLinked checks the demo's pages fit together: the plain
// page links to the React page, which loads the embedded bundle with
// relative URLs (so it also works under an app's base path), and the
// bundle is minified production React.
func TestReactPageIsLinked(t *testing.T) {
	index, err := spa.ReadFile("spa/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(index, []byte(`href="react.html"`)) {
		t.Errorf("spa/index.html does not link to react.html")
	}
	page, err := spa.ReadFile("spa/react.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<div id="root"></div>`, `<script type="module" src="react.js"></script>`, `href="app.css"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("spa/react.html lacks %s", want)
		}
	}
	bundle, err := spa.ReadFile("spa/react.js")
	if err != nil {
		t.Fatal(err)
	}
	// React's development build warns through these strings; the
	// production build has none of them.
	for _, dev := range []string{"react.development.js", "Warning: "} {
		if bytes.Contains(bundle, []byte(dev)) {
			t.Errorf("spa/react.js holds %q: a development build of React", dev)
		}
	}
	if !bytes.Contains(bundle, []byte("react-dom-client.production.js")) {
		t.Errorf("spa/react.js does not bundle the production react-dom client")
	}
}
