// Package e2e holds Gatehouse's end-to-end tests that drive a real browser
// (headless Chromium, through the Chrome DevTools Protocol) against the
// local demo: sign-in at the development provider, a proxied API call,
// checks that no token reaches the browser, and sign-out. The tests skip
// when Chromium is not installed, unless CI=true, where they fail instead.
package e2e
