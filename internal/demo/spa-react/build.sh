#!/bin/sh
# Bundles the demo's React page (app.jsx, the React bindings in clients/react,
# the browser helper in clients/js, and production React) into one minified
# ES module, OUTDIR/react.js (default: ../spa, the file the demo embeds).
# It uses the esbuild, react and react-dom locked in clients/react's
# package-lock.json, installing them with npm ci when node_modules is absent.
# TestReactBundleUpToDate (internal/demo) runs this script and fails when the
# committed bundle differs from its output: rerun it after changing app.jsx,
# clients/react, clients/js or that lock file, and commit ../spa/react.js.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pkg=$(cd "$here/../../../clients/react" && pwd)
out=${1:-$here/../spa}
if [ ! -x "$pkg/node_modules/.bin/esbuild" ]; then
	(cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error)
fi
# esbuild runs in this directory, so the bundle (its license comments name
# module paths) does not depend on where the repository is checked out.
# NODE_PATH lets app.jsx import react from clients/react's node_modules; the
# alias is the bindings' package name, as an application would import them.
cd "$here"
NODE_PATH="$pkg/node_modules" exec "$pkg/node_modules/.bin/esbuild" app.jsx \
	--bundle --minify --format=esm --jsx=automatic \
	--alias:@gatehouse-bff/react=../../../clients/react/gatehouse-react.js \
	'--define:process.env.NODE_ENV="production"' \
	--legal-comments=eof --charset=utf8 --log-level=warning \
	--outfile="$out/react.js"
