// Package e2e holds Gatehouse's end-to-end tests that drive a real browser
// (headless Chromium, through the Chrome DevTools Protocol) against the
// local demo: sign-in at the development provider, a proxied API call,
// checks that no token reaches the browser, and sign-out; two and more tabs
// of an SPA using the browser helper (clients/js) agreeing on sign-in and
// sign-out; and a React page on the React bindings (clients/react), whose
// npm dependencies the tests install with npm ci and whose type
// declarations they type-check. The tests skip when Chromium (or, for
// clients/react, Node.js and npm) is not installed, unless CI=true, where
// they fail instead.
package e2e
