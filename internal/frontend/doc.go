// Package frontend serves the single-page application itself: either the
// built files from a directory, or, during development, a reverse proxy to
// a dev server such as Vite (including its WebSocket for hot module
// replacement).
//
// Static files are served from [Options.StaticDir] through an [os.Root], so
// symbolic links cannot lead outside the directory. There are no directory
// listings, and names with a segment starting with "." (".env", ".git") are
// never served, except ".well-known". A GET or HEAD for a missing file that
// looks like a navigation gets index.html (SPA fallback): the last path
// segment has no extension, or the request's Accept includes text/html, or
// Sec-Fetch-Dest is "document". Other missing files are 404, so a missing
// script is never answered with HTML.
//
// Caching: HTML files (index.html included) get "Cache-Control: no-cache",
// so a deployment is picked up at once. Files whose name contains a
// content-hash segment get "public, max-age=31536000, immutable". A hash
// segment is a part of the name before its extension, split at "." and "-",
// of at least 8 characters from [A-Za-z0-9_], holding at least one digit and
// one letter: "app.3f9a2c1b.js", "index-BXdx4yT2.js", "main.4e5f6a7b8c9d0e1f.css".
// A hash without a digit is not recognised (the file is then only
// revalidated, never wrongly cached). Every other file gets "no-cache".
//
// Static responses carry security headers: by default
// X-Content-Type-Options: nosniff, Referrer-Policy:
// strict-origin-when-cross-origin, X-Frame-Options: DENY and
// Content-Security-Policy: frame-ancestors 'none' (the application cannot
// be framed; no script policy is imposed). [Options.Headers] adds headers
// and overrides defaults; an empty value removes a default.
//
// The dev-server proxy removes Gatehouse's cookies, the browser's
// Authorization and forwarding and identity headers, exactly as the API
// proxy does (proxy.SanitizeRequest), and drops Set-Cookie headers naming a
// Gatehouse cookie. The dev server must accept Gatehouse's public origin on
// its WebSocket (for Vite: server.allowedHosts and server.hmr settings).
package frontend
